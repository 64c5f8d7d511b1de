"""The business-rules workflow on moto's States Language interpreter, with its bus and topic
tapped by queues, so each execution's events and notifications can be read back, and its
table of pending reviews."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payment_local import moto_internals
from payment_posting_functions.domain.accounts import Account
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import (
    EventName,
    EventSource,
    ReviewDecided,
    ReviewDecision,
    TransactionEnriched,
)
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_stack.rules_engine import EVENT_NAME_SUBSTITUTIONS
from tests.factories import valid_item

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachine" / "business_rules.asl.json"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
BUS = "payments"
PENDING_REVIEWS = "pending-reviews"
PENDING_REVIEW_DAYS = 90
# What the stack passes as DefinitionSubstitutions, besides the bus, topic and table.
RULE_SETTINGS = {
    "HighValueThreshold": "1000000",
    "WatchedMccs": "7995,6051,4829",
    "MaxFxDeviationBps": "300",
    "PendingReviewDays": str(PENDING_REVIEW_DAYS),
}
MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def substitute(text: str, values: dict[str, str]) -> str:
    """``${Name}`` replaced by its value as plain text, as CloudFormation's
    ``DefinitionSubstitutions`` does; every placeholder must be given a value."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "a placeholder was left without a value"
    return text


def substitutions(topic_arn: str) -> dict[str, str]:
    """What RulesEngine substitutes: the event catalogue's names (the very mapping the
    construct uses), the bus, the topic and the rule settings."""
    return {
        **EVENT_NAME_SUBSTITUTIONS,
        "EventBusName": BUS,
        "FailureTopicArn": topic_arn,
        "PendingReviewsTableName": PENDING_REVIEWS,
        **RULE_SETTINGS,
    }


def enriched_event(account: Account | None, **overrides: Any) -> dict[str, Any]:
    """A TransactionEnriched event for ``valid_item(**overrides)``, as EventBridge delivers it
    to the workflow (the rule's target input is the whole event)."""
    transaction = AuthorizedTransaction.model_validate(valid_item(**overrides))
    detail = TransactionEnriched(
        transaction_id=transaction.transaction_id,
        transaction=transaction,
        enrichment=enrich(transaction, account),
    ).to_detail()
    return {
        "version": "0",
        "id": "c4d5e6f7-0000-4000-8000-000000000001",
        "detail-type": EventName.TRANSACTION_ENRICHED.value,
        "source": EventSource.ENRICHMENT.value,
        "account": ACCOUNT,
        "time": "2026-11-24T10:15:31Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def review_event(
    transaction_id: str,
    decision: str = ReviewDecision.APPROVE,
    reviewer: str = "reviewer-7",
    **detail: Any,
) -> dict[str, Any]:
    """A ReviewDecided event as EventBridge delivers it to the workflow; ``detail`` adds to
    (or, with None, removes from) what the catalogue's model renders."""
    rendered = ReviewDecided(
        transaction_id=transaction_id,
        decision=ReviewDecision.APPROVE,
        reviewer="placeholder",
    ).to_detail()
    rendered.update(decision=decision, reviewer=reviewer, **detail)
    return {
        "version": "0",
        "id": "d5e6f7a8-0000-4000-8000-000000000002",
        "detail-type": EventName.REVIEW_DECIDED.value,
        "source": EventSource.REVIEW.value,
        "account": ACCOUNT,
        "time": "2026-11-24T11:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {key: value for key, value in rendered.items() if value is not None},
    }


@dataclass(frozen=True)
class Execution:
    status: str
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]  # what reached the bus, in the order the workflow put it
    notifications: list[dict[str, Any]]  # SNS envelopes (Subject, Message, ...)


@dataclass
class RulesWorkflow:
    """The deployed workflow on moto, and the taps on what it publishes."""

    machine_arn: str
    topic_arn: str
    tap_url: str
    notifications_url: str
    _names: Iterator[int] = field(default_factory=itertools.count)

    def pending_reviews(self) -> dict[str, dict[str, Any]]:
        """The pending reviews table, by transaction id, as DynamoDB holds it."""
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        items = dynamodb.scan(TableName=PENDING_REVIEWS)["Items"]
        return {item["transactionId"]["S"]: item for item in items}

    def run(self, event: dict[str, Any]) -> Execution:
        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        # The patched StartExecution returns once the execution has finished.
        started = stepfunctions.start_execution(
            stateMachineArn=self.machine_arn,
            name=f"execution-{next(self._names)}",  # moto refuses a repeated (or no) name
            input=json.dumps(event),
        )
        described = stepfunctions.describe_execution(executionArn=started["executionArn"])
        events = sorted(drain(self.tap_url), key=lambda e: str(e["detail"].get("occurredAt")))
        return Execution(
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            events=events,
            notifications=drain(self.notifications_url),
        )


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message body a queue holds, parsed, oldest first."""
    sqs = boto3.client("sqs", region_name=REGION)
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


@pytest.fixture
def rules() -> Iterator[RulesWorkflow]:
    """The workflow as the stack deploys it (Express), on a fresh moto."""
    moto_internals.apply_patches()
    with mock_aws(config=MOTO_CONFIG):
        events = boto3.client("events", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        events.create_event_bus(Name=BUS)
        tap_url, tap_arn = _queue("tap")
        events.put_rule(
            Name="everything",
            EventBusName=BUS,
            EventPattern=json.dumps({"source": [{"prefix": ""}]}),
        )
        events.put_targets(
            Rule="everything", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": tap_arn}]
        )
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=PENDING_REVIEWS,
            KeySchema=[{"AttributeName": "transactionId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "transactionId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        topic_arn: str = sns.create_topic(Name="rules-failures")["TopicArn"]
        notifications_url, notifications_arn = _queue("rules-notifications")
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=notifications_arn)
        definition = substitute(DEFINITION.read_text(), substitutions(topic_arn))
        machine_arn: str = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="business-rules",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/business-rules",
            type="EXPRESS",
        )["stateMachineArn"]
        yield RulesWorkflow(machine_arn, topic_arn, tap_url, notifications_url)


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits moto's interpreter makes between retries, recorded instead of slept.

    Reaches into moto (pinned by ``moto_internals``): its Retrier calls ``time.sleep``.
    """
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits
