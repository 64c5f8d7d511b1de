"""A role the user gives, and the grants an operator is given, under the local runtime's access
enforcement: what the constructs add to them is enough for the calls, and nothing more than
those calls is allowed.

The dev stack is synthesized once with two changes a user of the constructs would make: the
posting function runs as a role the app made (``BufferedPoster(role=...)``), and operator
roles hold one grant each. The pipeline then posts with the user's role; each operator makes
the call its grant is for, and a role without it is refused the same call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_iam as iam
from botocore.exceptions import ClientError
from constructs import Construct

from payment_local.access.calls import checks_for_call
from payment_local.assembly import StackAssembly, check_fresh, load_assembly
from payment_local.pipeline_run import run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator
from payment_stack import BufferedPoster, PaymentPostingStack, StageConfig
from payment_stack import stack as stack_module
from tests.e2e.conftest import ROOT
from tests.infra.support import logical_id

pytestmark = pytest.mark.slow

USER_POSTER_ROLE = "UserPosterRole"
OPERATORS = ("QuarantineReader", "LedgerReader", "DeadLetterReader", "Redriver", "Stranger")


@dataclass(frozen=True)
class Variant:
    assembly: StackAssembly
    ids: dict[str, str]  # what the tests look up -> logical id


def _poster_as_the_users_role(scope: Construct, construct_id: str, **props: Any) -> BufferedPoster:
    """``BufferedPoster`` as an app would write it with a role of its own."""
    role = iam.Role(
        scope,
        USER_POSTER_ROLE,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="The app's own role for the posting function",
    )
    return BufferedPoster(scope, construct_id, role=role, **props)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Variant:
    outdir = tmp_path_factory.mktemp("cdk.out.given-roles")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    config = StageConfig.from_context(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stack_module, "BufferedPoster", _poster_as_the_users_role)
        stack = PaymentPostingStack(app, f"PaymentPosting-{config.name}", config=config)
    roles = {
        name: iam.Role(stack, name, assumed_by=iam.AccountRootPrincipal()) for name in OPERATORS
    }
    stack.ingest.grant_read_quarantine(roles["QuarantineReader"])
    stack.poster.grant_read_ledger(roles["LedgerReader"])
    stack.poster.grant_read_dead_letters(roles["DeadLetterReader"])
    stack.poster.grant_redrive(roles["Redriver"])
    ids = {name: logical_id(role) for name, role in roles.items()}
    ids |= {
        USER_POSTER_ROLE: logical_id(stack.node.find_child(USER_POSTER_ROLE)),
        # The tables are exposed as imported views that know their key; their resources:
        "quarantine": logical_id(stack.ingest.node.find_child("QuarantineTable")),
        "ledger": logical_id(stack.poster.node.find_child("LedgerBalances")),
        "journal": logical_id(stack.poster.node.find_child("LedgerJournal")),
        "dead letters": logical_id(stack.poster.dead_letter_queue),
        "buffer": logical_id(stack.poster.queue),
    }
    app.synth()
    assembly = load_assembly(outdir)
    check_fresh(assembly)
    return Variant(assembly, ids)


@pytest.fixture
def runtime(variant: Variant, tmp_path: Path) -> Iterator[LocalRuntime]:
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(variant.assembly, function_log=log) as running,
    ):
        yield running


def _arn(runtime: LocalRuntime, logical: str) -> str:
    return str(runtime.resolver.attributes[(logical, "Arn")])


def test_the_pipeline_posts_with_the_users_role_and_its_grants_suffice(
    variant: Variant, runtime: LocalRuntime
) -> None:
    knobs = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0, high_value_rate=0,
                  foreign_rate=0, unknown_account_rate=0)  # fmt: skip
    records = list(TransactionGenerator(knobs=knobs, seed=31).generate(8))

    run_transactions(runtime, records)

    by_tx = runtime.event_log.by_transaction
    outcomes = [by_tx[r.transaction_id][-1].detail_type for r in records]
    assert outcomes == ["TransactionPosted"] * len(records)
    assert runtime.access.denials() == []
    # The function ran as the user's role, and that role's calls were the posting.
    user_role = _arn(runtime, variant.ids[USER_POSTER_ROLE])
    calls = {req.action for (req, ok), _ in runtime.access.decided.items()
             if req.caller.arn == user_role and ok}  # fmt: skip
    assert {"sqs:ReceiveMessage", "dynamodb:UpdateItem", "events:PutEvents"} <= calls


def _client(runtime: LocalRuntime, role_arn: str, service: str) -> Any:
    credentials = runtime.access.credentials_for(role_arn)
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.session_token,
        region_name=runtime.environment.region,
    ).client(service)


def _refused(call: Any) -> bool:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied")
    return False


@pytest.mark.denials_expected
def test_each_operator_grant_allows_its_call_and_a_role_without_it_is_refused(
    variant: Variant, runtime: LocalRuntime
) -> None:
    role = {name: _arn(runtime, variant.ids[name]) for name in OPERATORS}
    quarantine = runtime.topology.tables[variant.ids["quarantine"]]
    ledger = runtime.topology.tables[variant.ids["ledger"]]
    journal = runtime.topology.tables[variant.ids["journal"]]
    dead_letters_url = runtime.topology.queues[variant.ids["dead letters"]]
    # What an operator finds there, put by the runtime itself.
    runtime.clients.dynamodb.put_item(
        TableName=quarantine,
        Item={"transactionId": {"S": "tx-1"}, "sequenceNumber": {"S": "1"},
              "reason": {"S": "INVALID_RECORD"}},
    )  # fmt: skip
    runtime.clients.sqs.send_message(QueueUrl=dead_letters_url, MessageBody='{"id": "tx-2"}')

    def read_quarantine(who: str) -> Any:
        client = _client(runtime, role[who], "dynamodb")
        return lambda: client.query(
            TableName=quarantine,
            KeyConditionExpression="transactionId = :id",
            ExpressionAttributeValues={":id": {"S": "tx-1"}},
        )

    def read_ledger(who: str) -> Any:
        client = _client(runtime, role[who], "dynamodb")
        return lambda: client.scan(TableName=ledger)

    def read_journal(who: str) -> Any:
        client = _client(runtime, role[who], "dynamodb")
        return lambda: client.scan(TableName=journal)

    def read_dead_letters(who: str) -> Any:
        client = _client(runtime, role[who], "sqs")
        return lambda: client.receive_message(QueueUrl=dead_letters_url, VisibilityTimeout=0)

    assert read_quarantine("QuarantineReader")()["Items"][0]["reason"] == {"S": "INVALID_RECORD"}
    assert "Items" in read_ledger("LedgerReader")()
    assert "Items" in read_journal("LedgerReader")()
    [message] = read_dead_letters("DeadLetterReader")()["Messages"]
    assert json.loads(message["Body"]) == {"id": "tx-2"}
    for call in (read_quarantine, read_ledger, read_journal, read_dead_letters):
        assert _refused(call("Stranger")), call.__name__
    # Each grant is for its own data: the ledger's reader reads no quarantine, and so on.
    assert _refused(read_quarantine("LedgerReader"))
    assert _refused(read_ledger("QuarantineReader"))
    assert _refused(read_journal("QuarantineReader"))
    assert _refused(read_dead_letters("LedgerReader"))

    # moto runs no message move task, so a redrive is decided by the runtime's authorizer on
    # the checks the call and its task need (payment_local/access/calls.py), not served.
    redrive = {
        "SourceArn": _arn(runtime, variant.ids["dead letters"]),
        "DestinationArn": _arn(runtime, variant.ids["buffer"]),
    }
    checks = checks_for_call(runtime.access.model, "sqs", "StartMessageMoveTask", redrive)
    assert runtime.access.check(runtime.access.role(role["Redriver"]), checks) is None
    for who in ("DeadLetterReader", "Stranger"):
        refused = runtime.access.check(runtime.access.role(role[who]), checks)
        assert refused is not None, who
    listing = checks_for_call(
        runtime.access.model, "sqs", "ListMessageMoveTasks", {"SourceArn": redrive["SourceArn"]}
    )
    assert runtime.access.check(runtime.access.role(role["Redriver"]), listing) is None
