"""The HTTP variant placed in a bank's VPC (``-c coreBankingVpcId=...``), run locally: the
posting function reaches what its security group lets it reach, as on AWS.

With a way to every API it calls (interface endpoints' group, DynamoDB's prefix list) it posts
to the core system. With DynamoDB's gateway endpoint alone, the secret read and the events
publish cannot leave the VPC: on AWS those calls time out; locally they are refused the same
way, the transactions are retried and end in the posting dead-letter queue, and the core
system sees nothing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from payment_local.access.authorizer import describe
from payment_local.assembly import StackAssembly
from payment_local.pipeline_run import run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator
from payment_stack.core_banking_network import (
    CIDR_CONTEXT_KEY,
    ENDPOINTS_CONTEXT_KEY,
    SUBNETS_CONTEXT_KEY,
    VPC_CONTEXT_KEY,
)
from payment_stack.stack import POSTING_CONTEXT_KEY
from tests.e2e.conftest import synth_dev

pytestmark = pytest.mark.slow

CLEAN = Knobs(duplicate_rate=0, foreign_rate=0, high_value_rate=0, unknown_account_rate=0,
              malformed_rate=0, rule_break_rate=0)  # fmt: skip
DYNAMODB_PREFIX_LIST = "pl-6ea54007"
ENDPOINTS_GROUP = "sg-0e0d0c0b0a0912345"


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> StackAssembly:
    return synth_dev(
        tmp_path_factory.mktemp("cdk.out.vpc"),
        **{
            POSTING_CONTEXT_KEY: "http",
            VPC_CONTEXT_KEY: "vpc-0abc12345",
            SUBNETS_CONTEXT_KEY: "subnet-0aa11bb22,subnet-0cc33dd44",
            CIDR_CONTEXT_KEY: "10.20.0.0/16",
            ENDPOINTS_CONTEXT_KEY: f"{DYNAMODB_PREFIX_LIST},{ENDPOINTS_GROUP}",
        },
    )


def _without_the_interface_endpoints(assembly: StackAssembly) -> StackAssembly:
    """The same stack with the egress rule to the interface endpoints' group taken out."""
    template = copy.deepcopy(assembly.template)
    removed = 0
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            rules = resource["Properties"].get("SecurityGroupEgress", [])
            kept = [r for r in rules if r.get("DestinationSecurityGroupId") != ENDPOINTS_GROUP]
            removed += len(rules) - len(kept)
            resource["Properties"]["SecurityGroupEgress"] = kept
    assert removed == 1
    return StackAssembly(assembly.directory, assembly.stack_name, template, assembly.assets)


def _dead_letters(runtime: LocalRuntime) -> list[str]:
    [url] = [u for lid, u in runtime.topology.queues.items() if lid.startswith("PostingDeadLetter")]
    found = []
    while messages := runtime.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            found.append(json.loads(message["Body"])["detail"]["transactionId"])
            runtime.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_placed_function_posts_through_its_endpoints(
    placed: StackAssembly, tmp_path: Path
) -> None:
    records = list(TransactionGenerator(knobs=CLEAN, seed=21).generate(8))
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(placed, function_log=log) as runtime,
    ):
        [poster] = [
            f for lid, f in runtime.topology.functions.items() if lid.startswith("PostingPoster")
        ]
        assert poster.network is not None
        assert poster.network.subnet_ids == ("subnet-0aa11bb22", "subnet-0cc33dd44")
        core = runtime.core_banking
        assert core is not None
        run_transactions(runtime, records, timeout=120)
        by_tx = runtime.event_log.by_transaction
        posted = {
            tx for tx, events in by_tx.items() if events[-1].detail_type == "TransactionPosted"
        }
        assert posted, {tx: [e.detail_type for e in ev] for tx, ev in by_tx.items()}
        assert set(core.state.postings) == posted
        assert _dead_letters(runtime) == []


def test_without_a_way_to_the_apis_nothing_posts_and_the_transactions_wait_in_the_dlq(
    placed: StackAssembly, tmp_path: Path
) -> None:
    records = list(TransactionGenerator(knobs=CLEAN, seed=22).generate(6))
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(_without_the_interface_endpoints(placed), function_log=log) as runtime,
    ):
        core = runtime.core_banking
        assert core is not None
        run_transactions(runtime, records, timeout=120)
        by_tx = runtime.event_log.by_transaction
        approved = {
            tx
            for tx, events in by_tx.items()
            if any(e.detail_type == "TransactionApproved" for e in events)
        }
        assert approved
        # Nothing reached the core system (the credential read could not leave the VPC), no
        # outcome was published, and every approved transaction waits in the DLQ to redrive.
        assert core.state.requests == 0
        assert not any(
            e.detail_type in ("TransactionPosted", "PostingFailed")
            for events in by_tx.values()
            for e in events
        )
        assert sorted(_dead_letters(runtime)) == sorted(approved)
        # DynamoDB was reached through its gateway endpoint (the idempotency claims), Secrets
        # Manager and EventBridge never: their calls did not get as far as authorization.
        reached = {
            req.action.split(":")[0]
            for (req, _), _ in runtime.access.decided.items()
            if "PostingPoster" in describe(req.caller, req)
        }
        assert "dynamodb" in reached
        assert not reached & {"secretsmanager", "events"}
