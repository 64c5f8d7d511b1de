"""Transactions held for review, and the decisions that end the wait, on moto's interpreter.

A hold stores the pending review before ``TransactionHeld`` is published; a ``ReviewDecided``
event claims it, publishes the outcome it decides (built from the stored review), and marks it
decided; it stays until its time to live, so a replayed hold finds the decision and stands by
it. A decision that finds no review to take fails the execution and tells the failure topic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from payment_posting_functions.domain.events import (
    EventName,
    ReviewDecision,
    TransactionApproved,
    TransactionHeld,
    TransactionRejected,
)
from tests.factories import valid_item
from tests.workflow.conftest import (
    BUS,
    DEFINITION,
    PENDING_REVIEW_DAYS,
    PENDING_REVIEWS,
    REGION,
    Execution,
    RulesWorkflow,
    review_event,
    substitute,
    substitutions,
)
from tests.workflow.test_business_rules import Case, assert_catalogued, build_input, eur

APPROVE = ReviewDecision.APPROVE
DECLINE = ReviewDecision.DECLINE
TOKEN = valid_item()["panToken"]
HIGH_VALUE = Case(eur(1_000_001), [EventName.TRANSACTION_HELD], hold_reasons=["HIGH_VALUE"])


def hold(rules: RulesWorkflow, case: Case = HIGH_VALUE) -> dict[str, Any]:
    """Run a transaction the rules hold; the TransactionHeld detail."""
    execution = rules.run(build_input(case))
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [e["detail-type"] for e in execution.events] == [EventName.TRANSACTION_HELD]
    held: dict[str, Any] = execution.events[0]["detail"]
    return held


def assert_decided(rules: RulesWorkflow, transaction_id: str, decision: ReviewDecision) -> None:
    """The review is kept, decided, its outcome published: no other decision can take it."""
    stored = rules.pending_reviews()[transaction_id]
    assert stored["decision"] == {"S": decision}
    assert "outcomePublishedAt" in stored


def assert_not_taken(execution: Execution, *expected_in_message: str) -> dict[str, Any]:
    """The decision changed nothing, and the rules team was told (ids only)."""
    assert execution.status == "FAILED"
    assert execution.error == "ReviewDecisionNotTaken"
    assert execution.events == []
    [notification] = execution.notifications
    assert notification["Subject"] == "Review decision not taken"
    message: dict[str, Any] = json.loads(notification["Message"])
    assert message["event"] == EventName.REVIEW_DECIDED
    assert message["eventId"] == review_event("any")["id"]
    for text in expected_in_message:
        assert text in notification["Message"]
    assert TOKEN not in notification["Message"]
    return message


def test_a_hold_stores_its_review_for_a_decision_to_find(rules: RulesWorkflow) -> None:
    held = hold(rules)

    stored = rules.pending_reviews()[held["transactionId"]]
    assert json.loads(stored["transaction"]["S"]) == held["transaction"]
    assert json.loads(stored["enrichment"]["S"]) == held["enrichment"]
    assert json.loads(stored["reasons"]["S"]) == ["HIGH_VALUE"]
    assert "decision" not in stored
    # Kept until the end of the day it was held, plus the retention (its time to live).
    held_at = datetime.fromisoformat(stored["heldAt"]["S"])
    day_after = datetime.combine(held_at.date() + timedelta(days=1), datetime.min.time(), UTC)
    expires_at = day_after + timedelta(days=PENDING_REVIEW_DAYS)
    assert int(stored["expiresAt"]["N"]) == int(expires_at.timestamp())


def test_an_approval_publishes_the_held_transaction_approved_and_ends_the_review(
    rules: RulesWorkflow,
) -> None:
    held = hold(rules)

    execution = rules.run(review_event(held["transactionId"], APPROVE))

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [e["detail-type"] for e in execution.events] == [EventName.TRANSACTION_APPROVED]
    assert_catalogued(execution.events[0], held["transactionId"])
    approved = TransactionApproved.model_validate(execution.events[0]["detail"])
    assert approved.transaction == TransactionHeld.model_validate(held).transaction
    assert execution.events[0]["detail"]["enrichment"] == held["enrichment"]
    assert execution.notifications == []  # a decision taken is no failure
    assert_decided(rules, held["transactionId"], APPROVE)


def test_a_decline_rejects_the_held_transaction_as_declined_in_review(
    rules: RulesWorkflow,
) -> None:
    held = hold(rules)

    execution = rules.run(review_event(held["transactionId"], DECLINE))

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [e["detail-type"] for e in execution.events] == [EventName.TRANSACTION_REJECTED]
    assert_catalogued(execution.events[0], held["transactionId"])
    rejected = TransactionRejected.model_validate(execution.events[0]["detail"])
    assert rejected.reason_code == "DECLINED_IN_REVIEW"
    assert rejected.reason == "declined by the reviewer of the held transaction"
    assert execution.events[0]["detail"]["transaction"] == held["transaction"]
    # A person's decision, not a validation rule: the rules team is not notified.
    assert execution.notifications == []
    assert_decided(rules, held["transactionId"], DECLINE)


@pytest.mark.parametrize(
    ("first", "second"),
    [(APPROVE, APPROVE), (APPROVE, DECLINE), (DECLINE, APPROVE), (DECLINE, DECLINE)],
    ids=["approve-again", "decline-after-approve", "approve-after-decline", "decline-again"],
)
def test_a_second_decision_changes_nothing_and_says_so(
    rules: RulesWorkflow, first: ReviewDecision, second: ReviewDecision
) -> None:
    held = hold(rules)
    assert rules.run(review_event(held["transactionId"], first)).status == "SUCCEEDED"

    again = rules.run(review_event(held["transactionId"], second, reviewer="reviewer-9"))

    message = assert_not_taken(again, held["transactionId"])
    assert message["decision"] == second
    assert "no review of the transaction is pending" in message["reason"]


def test_a_decision_for_a_transaction_never_held_changes_nothing_and_says_so(
    rules: RulesWorkflow,
) -> None:
    approved = rules.run(build_input(Case(eur(4200), [EventName.TRANSACTION_APPROVED])))
    assert approved.status == "SUCCEEDED"

    for transaction_id in (approved.events[0]["detail"]["transactionId"], "tx-never-seen-01"):
        execution = rules.run(review_event(transaction_id, DECLINE))
        assert_not_taken(execution, transaction_id)
    assert rules.pending_reviews() == {}


@pytest.mark.parametrize(
    "detail",
    [
        {"decision": "MAYBE"},
        {"decision": "approve"},
        {"reviewer": None},
        {"transactionId": None},
        {"transactionId": 42},
    ],
    ids=["unknown-decision", "lower-case", "no-reviewer", "no-transaction", "numeric-id"],
)
def test_a_decision_that_is_not_valid_takes_nothing(
    rules: RulesWorkflow, detail: dict[str, Any]
) -> None:
    held = hold(rules)
    event = review_event(held["transactionId"])
    for key, value in detail.items():
        if value is None:
            del event["detail"][key]
        else:
            event["detail"][key] = value

    message = assert_not_taken(rules.run(event))

    assert "does not name a transaction, a reviewer and APPROVE or DECLINE" in message["reason"]
    # The review still waits, unclaimed, for a decision that is one.
    assert "decision" not in rules.pending_reviews()[held["transactionId"]]
    assert rules.run(review_event(held["transactionId"], APPROVE)).status == "SUCCEEDED"


def test_the_outcome_is_the_stored_transaction_whatever_the_decision_carries(
    rules: RulesWorkflow,
) -> None:
    held = hold(rules)
    forged = {**held["transaction"], "billingAmount": {"amount": 1, "currency": "EUR"}}
    event = review_event(
        held["transactionId"],
        APPROVE,
        transaction=forged,
        enrichment={**held["enrichment"], "postingAccountId": "ACC-9999"},
    )

    execution = rules.run(event)

    [approved] = execution.events
    assert approved["detail"]["transaction"] == held["transaction"]
    assert approved["detail"]["enrichment"] == held["enrichment"]


def test_a_review_claimed_by_one_decision_is_refused_to_another_and_finished_by_its_own(
    rules: RulesWorkflow,
) -> None:
    held = hold(rules)
    # A decline whose execution claimed the review and then failed before publishing.
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=PENDING_REVIEWS,
        Key={"transactionId": {"S": held["transactionId"]}},
        UpdateExpression="SET decision = :d, reviewer = :r",
        ExpressionAttributeValues={":d": {"S": DECLINE}, ":r": {"S": "reviewer-1"}},
    )

    assert_not_taken(rules.run(review_event(held["transactionId"], APPROVE)))
    assert rules.pending_reviews()[held["transactionId"]]["decision"] == {"S": DECLINE}

    redelivered = rules.run(review_event(held["transactionId"], DECLINE))
    assert redelivered.status == "SUCCEEDED", (redelivered.error, redelivered.cause)
    assert [e["detail-type"] for e in redelivered.events] == [EventName.TRANSACTION_REJECTED]
    assert_decided(rules, held["transactionId"], DECLINE)


def test_an_outcome_the_bus_refuses_fails_the_decision_and_keeps_the_review_claimed(
    rules: RulesWorkflow, retry_waits: list[float]
) -> None:
    held = hold(rules)
    boto3.client("events", region_name=REGION).delete_event_bus(Name=BUS)

    execution = rules.run(review_event(held["transactionId"], APPROVE))

    assert execution.status == "FAILED"
    assert execution.error == "OutcomeNotPublished"
    [notification] = execution.notifications
    assert notification["Subject"] == "Business rules workflow failed"
    assert held["transactionId"] in notification["Message"]
    # Claimed, not removed: the same decision, redelivered, publishes it; another is refused.
    assert rules.pending_reviews()[held["transactionId"]]["decision"] == {"S": APPROVE}
    assert retry_waits == [1, 2, 4]


def test_a_transaction_held_twice_keeps_its_first_review(rules: RulesWorkflow) -> None:
    first = hold(rules)
    stored = rules.pending_reviews()[first["transactionId"]]

    second = hold(rules)  # the enriched event delivered again

    assert second["transaction"] == first["transaction"]
    assert rules.pending_reviews()[first["transactionId"]] == stored


@pytest.mark.parametrize("decision", [APPROVE, DECLINE])
def test_a_decided_transaction_replayed_is_not_held_again(
    rules: RulesWorkflow, decision: ReviewDecision
) -> None:
    # A replay of its authorization from the archive brings the enriched event again after
    # a person decided: the decision stands; no second hold, no second review to take.
    first = build_input(HIGH_VALUE)
    held = hold(rules)
    assert rules.run(review_event(held["transactionId"], decision)).status == "SUCCEEDED"
    decided = rules.pending_reviews()[held["transactionId"]]

    replayed = rules.run({**first, "detail": {**first["detail"], "replayOf": "replay-1"}})

    assert replayed.status == "SUCCEEDED", (replayed.error, replayed.cause)
    assert replayed.events == []
    assert replayed.notifications == []
    assert rules.pending_reviews()[held["transactionId"]] == decided
    # And a decision sent again still finds nothing to take.
    assert_not_taken(rules.run(review_event(held["transactionId"], decision)))


def test_a_hold_whose_review_cannot_be_stored_is_not_announced(
    rules: RulesWorkflow, retry_waits: list[float]
) -> None:
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=PENDING_REVIEWS)

    execution = rules.run(build_input(HIGH_VALUE))

    # No TransactionHeld that no decision could ever take.
    assert execution.status == "FAILED"
    assert execution.error == "OutcomeNotPublished"
    assert execution.events == []
    [notification] = execution.notifications
    assert notification["Subject"] == "Business rules workflow failed"


# The states that count a pending review's expiry, run alone on a date of the test's choosing.
EXPIRY_STATES = ("ReadHeldDate", "CountHeldDate", "CountFromMarch", "CountLeapDays", "CountExpiry")


@pytest.fixture
def expiry(rules: RulesWorkflow) -> Any:
    states = json.loads(substitute(DEFINITION.read_text(), substitutions(rules.topic_arn)))[
        "States"
    ]
    machine = {name: states[name] for name in EXPIRY_STATES}
    machine["ReadHeldDate"]["Next"] = "Backdate"
    # The date held, from the input instead of the clock.
    machine["Backdate"] = {
        "Type": "Pass",
        "InputPath": "$.heldAt",
        "ResultPath": "$.pendingReview.heldAt",
        "Next": "CountHeldDate",
    }
    del machine["CountExpiry"]["Next"]
    machine["CountExpiry"]["End"] = True
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    arn = stepfunctions.create_state_machine(
        name="expiry",
        definition=json.dumps({"StartAt": "ReadHeldDate", "States": machine}),
        roleArn="arn:aws:iam::123456789012:role/business-rules",
        type="EXPRESS",
    )["stateMachineArn"]
    runs = iter(range(1_000))

    def expires_at(held_at: str, days: int) -> int:
        started = stepfunctions.start_execution(
            stateMachineArn=arn,
            name=f"expiry-{next(runs)}",
            input=json.dumps({"heldAt": held_at, "settings": {"pendingReviewDays": days}}),
        )
        described = stepfunctions.describe_execution(executionArn=started["executionArn"])
        assert described["status"] == "SUCCEEDED", described.get("cause")
        output = json.loads(described["output"])["pendingReview"]["expiry"]["expiresAt"]
        assert isinstance(output, str)  # a DynamoDB number is written as a string
        return int(output)

    return expires_at


@pytest.mark.parametrize(
    "held_at",
    [
        "2026-11-24T10:15:31.123Z",
        "2026-12-01T04:53:34.917426+00:00",  # as moto writes $$.State.EnteredTime
        "2026-01-01T00:00:00Z",
        "2026-02-28T23:59:59.999Z",
        "2026-03-01T00:00:00Z",
        "2026-12-31T23:59:59Z",
        "2028-02-29T12:00:00Z",  # a leap day
        "2028-03-01T00:00:00Z",
        "2099-12-31T23:59:59Z",
        "2100-02-28T08:00:00Z",  # 2100 is no leap year
        "2100-03-01T08:00:00Z",
        "2400-02-29T08:00:00Z",  # 2400 is one
        "2400-12-31T08:00:00Z",
    ],
)
@pytest.mark.parametrize("days", [1, 90, 999])
def test_a_pending_review_expires_at_the_end_of_its_day_plus_the_retention(
    expiry: Any, held_at: str, days: int
) -> None:
    held = datetime.fromisoformat(held_at.replace("Z", "+00:00")).date()
    end_of_day = datetime.combine(held + timedelta(days=1), datetime.min.time(), UTC)

    assert expiry(held_at, days) == int((end_of_day + timedelta(days=days)).timestamp())
