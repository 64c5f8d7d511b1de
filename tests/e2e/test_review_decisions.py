"""A transaction held for review, and the decision that ends the wait, end to end.

The dev stack runs locally with the access check on: the rules hold a high-value purchase and
store its review; a ``ReviewDecided`` event on the bus re-enters the rules engine, which
publishes the outcome the decision makes. A decision that finds no review (a second one, or
one for a transaction never held) changes nothing and is reported to the rules team's topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from botocore.exceptions import ClientError

from payment_local.assembly import StackAssembly, check_fresh, load_assembly
from payment_local.clients import AwsClients
from payment_local.pipeline_run import LabelledRecord, run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.events import (
    EventName,
    EventSource,
    ReviewDecided,
    ReviewDecision,
)
from payment_stack import PaymentPostingStack, StageConfig
from tests.e2e.conftest import ROOT
from tests.factories import valid_item
from tests.infra.support import logical_id

pytestmark = pytest.mark.slow

APPROVE = ReviewDecision.APPROVE
DECLINE = ReviewDecision.DECLINE
# A purchase that posts at once (a financial message) of 20,000.00 EUR: over the high-value
# threshold, so held for review.
HIGH_VALUE_PURCHASE = {
    "mti": "0200",
    "transactionAmount": {"amount": 2_000_000, "currency": "EUR"},
    "billingAmount": {"amount": 2_000_000, "currency": "EUR"},
    "conversionRate": "1.00000000",
    "acquirerCountry": "DE",
    "accountId": "ACC-0001",
}


def _names(runtime: LocalRuntime, transaction_id: str) -> list[str]:
    return [e.detail_type for e in runtime.event_log.by_transaction[transaction_id]]


def _hold(runtime: LocalRuntime, transaction_id: str) -> None:
    item = valid_item(transactionId=transaction_id, **HIGH_VALUE_PURCHASE)
    # The demo's run would decide some of the held transactions itself: these tests decide.
    run_transactions(runtime, [LabelledRecord(item)], decide_reviews=False)
    assert _names(runtime, transaction_id)[-1] == EventName.TRANSACTION_HELD


def _decision(transaction_id: str, decision: ReviewDecision) -> dict[str, Any]:
    detail = ReviewDecided(transaction_id=transaction_id, decision=decision, reviewer="reviewer-7")
    return {
        "Source": EventSource.REVIEW.value,
        "DetailType": EventName.REVIEW_DECIDED.value,
        "Detail": json.dumps(detail.to_detail()),
    }


def _decide(
    runtime: LocalRuntime,
    transaction_id: str,
    decision: ReviewDecision,
    clients: AwsClients | None = None,
) -> None:
    """Put a decision on the bus, as a case tool does, and let the pipeline run."""
    entry = {"EventBusName": runtime.output("EventBusName"), **_decision(transaction_id, decision)}
    response = (clients or runtime.clients).events.put_events(Entries=[entry])
    assert response["FailedEntryCount"] == 0
    runtime.run_until_idle()


def _pending_reviews(runtime: LocalRuntime) -> dict[str, dict[str, Any]]:
    table = runtime.output("PendingReviewsTableName")
    items = runtime.clients.dynamodb.scan(TableName=table)["Items"]
    return {item["transactionId"]["S"]: item for item in items}


@pytest.fixture
def notices(runtime: LocalRuntime) -> Callable[[], list[dict[str, Any]]]:
    """What the rules engine tells the rules team, read from a queue subscribed to its topic."""
    sqs, sns = runtime.clients.sqs, runtime.clients.sns
    url = sqs.create_queue(QueueName="rules-team-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=runtime.output("RulesFailureTopicArn"), Protocol="sqs", Endpoint=arn)

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    return received


def _rules_dead_letters(runtime: LocalRuntime) -> int:
    [url] = [u for lid, u in runtime.topology.queues.items()
             if lid.startswith("RulesEngineDeadLetterQueue")]  # fmt: skip
    attributes = runtime.clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_held_transaction_approved_in_review_is_posted(runtime: LocalRuntime) -> None:
    _hold(runtime, "tx-review-approve-01")
    assert set(_pending_reviews(runtime)) == {"tx-review-approve-01"}

    _decide(runtime, "tx-review-approve-01", APPROVE)

    assert _names(runtime, "tx-review-approve-01") == [
        EventName.TRANSACTION_AUTHORIZED,
        EventName.TRANSACTION_ENRICHED,
        EventName.TRANSACTION_HELD,
        EventName.REVIEW_DECIDED,
        EventName.TRANSACTION_APPROVED,
        EventName.TRANSACTION_POSTED,
    ]
    events = runtime.event_log.by_transaction["tx-review-approve-01"]
    approved, posted = events[-2], events[-1]
    assert approved.source == EventSource.RULES  # what the posting buffer takes, and only that
    assert approved.detail["transaction"] == events[2].detail["transaction"]
    assert posted.detail["postingStatus"] == "POSTED"
    assert posted.detail["accountId"] == "ACC-0001"
    assert posted.detail["amount"] == HIGH_VALUE_PURCHASE["billingAmount"]
    # Kept, decided, until its time to live: a replay finds the decision and stands by it.
    decided = _pending_reviews(runtime)["tx-review-approve-01"]
    assert decided["decision"] == {"S": APPROVE}
    assert "outcomePublishedAt" in decided
    assert runtime.access.denials() == []
    # Step Functions' DynamoDB tasks called as the workflow's role, each checked, the table's
    # key included.
    role = _workflow_role(runtime)
    called = {req.action for (req, allowed), _ in runtime.access.decided.items()
              if allowed and req.caller.arn == role}  # fmt: skip
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= called
    assert "kms:Decrypt" in called


def _workflow_role(runtime: LocalRuntime) -> str:
    [machine] = [r for r in runtime.assembly.template["Resources"].values()
                 if r["Type"] == "AWS::StepFunctions::StateMachine"]  # fmt: skip
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return str(runtime.resolver.attributes[(role, "Arn")])


def test_a_held_transaction_declined_in_review_is_rejected_and_not_posted(
    runtime: LocalRuntime, notices: Callable[[], list[dict[str, Any]]]
) -> None:
    _hold(runtime, "tx-review-decline-01")

    _decide(runtime, "tx-review-decline-01", DECLINE)

    names = _names(runtime, "tx-review-decline-01")
    assert names[-2:] == [EventName.REVIEW_DECIDED, EventName.TRANSACTION_REJECTED]
    rejected = runtime.event_log.by_transaction["tx-review-decline-01"][-1]
    assert rejected.detail["reasonCode"] == "DECLINED_IN_REVIEW"
    assert EventName.TRANSACTION_POSTED not in names
    assert _pending_reviews(runtime)["tx-review-decline-01"]["decision"] == {"S": DECLINE}
    assert notices() == []  # a person's decision, not a rule's failure
    assert runtime.access.denials() == []


@pytest.mark.parametrize("second", [APPROVE, DECLINE], ids=["approve-again", "then-decline"])
def test_a_second_decision_changes_nothing_and_is_reported(
    runtime: LocalRuntime, notices: Callable[[], list[dict[str, Any]]], second: ReviewDecision
) -> None:
    _hold(runtime, "tx-review-twice-01")
    _decide(runtime, "tx-review-twice-01", APPROVE)
    decided = _names(runtime, "tx-review-twice-01")

    _decide(runtime, "tx-review-twice-01", second)

    # Only the decision itself reached the bus: no second outcome, no second posting.
    assert _names(runtime, "tx-review-twice-01") == [*decided, EventName.REVIEW_DECIDED]
    [notice] = notices()
    assert notice["Subject"] == "Review decision not taken"
    message = json.loads(notice["Message"])
    assert (message["transactionId"], message["decision"]) == ("tx-review-twice-01", second)
    # The workflow started and failed on purpose: nothing for the rule's dead-letter queue.
    assert _rules_dead_letters(runtime) == 0
    assert runtime.access.denials() == []


def test_a_decision_for_a_transaction_never_held_is_reported_not_lost(
    runtime: LocalRuntime, notices: Callable[[], list[dict[str, Any]]]
) -> None:
    _decide(runtime, "tx-never-held-0001", APPROVE)

    assert _names(runtime, "tx-never-held-0001") == [EventName.REVIEW_DECIDED]
    [notice] = notices()
    assert notice["Subject"] == "Review decision not taken"
    assert "no review of the transaction is pending" in notice["Message"]
    assert "tx-never-held-0001" in notice["Message"]
    assert _pending_reviews(runtime) == {}
    assert runtime.access.denials() == []


# -- the grant a case tool is given ---------------------------------------------------------


@dataclass(frozen=True)
class WithCaseTool:
    assembly: StackAssembly
    case_tool: str  # logical ids of the roles
    stranger: str


@pytest.fixture(scope="module")
def with_case_tool(tmp_path_factory: pytest.TempPathFactory) -> WithCaseTool:
    """The dev stack, with a case tool's role given ``grant_review_decisions`` and a role
    without it."""
    outdir = tmp_path_factory.mktemp("cdk.out.case-tool")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    config = StageConfig.from_context(app)
    stack = PaymentPostingStack(app, f"PaymentPosting-{config.name}", config=config)
    case_tool = iam.Role(stack, "CaseTool", assumed_by=iam.AccountRootPrincipal())
    stranger = iam.Role(stack, "Stranger", assumed_by=iam.AccountRootPrincipal())
    stack.rules_engine.grant_review_decisions(case_tool)
    app.synth()
    assembly = load_assembly(outdir)
    check_fresh(assembly)
    return WithCaseTool(assembly, logical_id(case_tool), logical_id(stranger))


@pytest.mark.denials_expected
def test_the_case_tool_may_put_review_decisions_and_nothing_else(
    with_case_tool: WithCaseTool, tmp_path: Path
) -> None:
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(with_case_tool.assembly, function_log=log) as runtime,
    ):

        def as_role(logical: str) -> AwsClients:
            arn = str(runtime.resolver.attributes[(logical, "Arn")])
            return AwsClients(runtime.environment.region, runtime.access.credentials_for(arn))

        case_tool, stranger = as_role(with_case_tool.case_tool), as_role(with_case_tool.stranger)
        bus = runtime.output("EventBusName")
        _hold(runtime, "tx-case-tool-0001")

        _decide(runtime, "tx-case-tool-0001", APPROVE, clients=case_tool)
        assert _names(runtime, "tx-case-tool-0001")[-1] == EventName.TRANSACTION_POSTED

        decision = {"EventBusName": bus, **_decision("tx-case-tool-0001", DECLINE)}
        forged = [
            # An approval in the rules engine's name, or in its own: refused either way.
            {**decision, "Source": EventSource.RULES.value},
            {**decision, "DetailType": EventName.TRANSACTION_APPROVED.value},
        ]
        for entry in forged:
            with pytest.raises(ClientError) as refused:
                case_tool.events.put_events(Entries=[entry])
            assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(ClientError):
            stranger.events.put_events(Entries=[decision])
