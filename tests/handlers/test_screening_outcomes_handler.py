"""The duplicate and quarantine handler on moto: a real bus and topic, each tapped by a queue."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from payment_posting_functions.domain.events import (
    DuplicateFlagged,
    Screening,
    StreamPosition,
    TransactionAuthorized,
    TransactionQuarantined,
)
from payment_posting_functions.domain.publisher import PublishError
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_posting_functions.handlers import screening_outcomes
from tests.factories import valid_item
from tests.handlers.conftest import handler_output, metric_unit, metric_values

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

BUS = "payments"
TOKEN = valid_item()["panToken"]
FINGERPRINT = "9" * 64


def delivered(detail: dict[str, Any]) -> dict[str, Any]:
    """A TransactionAuthorized detail wrapped as EventBridge hands it to a Lambda target."""
    return {
        "version": "0",
        "id": "0d6e3c1a-4f0b-4f3e-8a55-5b1f6f0f7c21",
        "detail-type": "TransactionAuthorized",
        "source": "payments.ingest",
        "account": "123456789012",
        "time": "2026-11-24T10:15:31Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def invalid_record(reason: str | None = "billingAmount: Field required") -> dict[str, Any]:
    return TransactionAuthorized(
        transaction_id="bad-record-0001",
        screening=Screening(valid=False, invalid_reason=reason),
        transaction=None,
        origin=StreamPosition(
            table_key={"transactionId": "bad-record-0001"}, sequence_number="4900000000000001"
        ),
    ).to_detail()


def duplicate() -> dict[str, Any]:
    transaction = AuthorizedTransaction.model_validate(valid_item(transactionId="retry-0000002"))
    return TransactionAuthorized(
        transaction_id=transaction.transaction_id,
        screening=Screening(
            valid=True, duplicate=True, duplicate_of="first-0000001", fingerprint=FINGERPRINT
        ),
        transaction=transaction,
    ).to_detail()


def queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message body the queue holds, parsed, oldest first."""
    sqs = boto3.client("sqs")
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


@pytest.fixture
def notifications(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The notification topic with a queue subscribed; returns the queue URL."""
    sns = boto3.client("sns")
    topic: str = sns.create_topic(Name="duplicates")["TopicArn"]
    url, arn = queue("notifications")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", topic)
    return url


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """The handler caches its clients per process, as Lambda does; each test gets new ones."""
    screening_outcomes.publisher.cache_clear()
    screening_outcomes.sns.cache_clear()
    yield
    screening_outcomes.publisher.cache_clear()
    screening_outcomes.sns.cache_clear()


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    with handler_output(screening_outcomes.logger, capsys) as read:
        yield read


@pytest.mark.parametrize(
    ("reason", "expected_reason"),
    [("billingAmount: Field required", "billingAmount: Field required"), (None, "invalid record")],
)
def test_an_invalid_record_is_quarantined_with_its_reason_and_origin(
    tap: str,
    notifications: str,
    lambda_context: Any,
    logs: Callable[[], str],
    reason: str | None,
    expected_reason: str,
) -> None:
    detail = invalid_record(reason)

    assert screening_outcomes.handler(delivered(detail), lambda_context) is None

    events = drain(tap)
    assert [(e["detail-type"], e["source"]) for e in events] == [
        ("TransactionQuarantined", "payments.screening")
    ]
    quarantined = TransactionQuarantined.model_validate(events[0]["detail"])
    assert quarantined.transaction_id == "bad-record-0001"
    assert quarantined.reason == expected_reason
    assert quarantined.origin is not None
    assert quarantined.to_detail()["origin"] == detail["origin"]
    assert quarantined.schema_version == "1.0"
    assert drain(notifications) == []
    assert "quarantined a record" in logs()


def test_a_duplicate_is_flagged_and_notified_without_card_data(
    tap: str, notifications: str, lambda_context: Any, logs: Callable[[], str]
) -> None:
    screening_outcomes.handler(delivered(duplicate()), lambda_context)

    events = drain(tap)
    assert [(e["detail-type"], e["source"]) for e in events] == [
        ("DuplicateFlagged", "payments.screening")
    ]
    flagged = DuplicateFlagged.model_validate(events[0]["detail"])
    assert flagged.transaction_id == "retry-0000002"
    assert flagged.duplicate_of == "first-0000001"
    assert flagged.fingerprint == FINGERPRINT
    [notification] = drain(notifications)
    assert notification["Subject"] == "Likely duplicate authorization"
    message = json.loads(notification["Message"])
    assert message["transactionId"] == "retry-0000002"
    assert message["duplicateOf"] == "first-0000001"
    assert TOKEN not in json.dumps(notification)
    output = logs()
    assert "flagged a duplicate" in output
    assert TOKEN not in output


@pytest.mark.parametrize("detail", [invalid_record(), duplicate()], ids=["invalid", "duplicate"])
def test_a_refusing_bus_raises_and_notifies_nothing(
    tap: str, notifications: str, lambda_context: Any, detail: dict[str, Any]
) -> None:
    boto3.client("events").delete_event_bus(Name=BUS)

    # moto refuses the call outright; AWS may instead fail the entry (PublishError).
    with pytest.raises((ClientError, PublishError)):
        screening_outcomes.handler(delivered(detail), lambda_context)

    assert drain(notifications) == []


def test_a_valid_first_sighting_sent_by_mistake_is_left_alone(
    tap: str, notifications: str, lambda_context: Any, logs: Callable[[], str]
) -> None:
    transaction = AuthorizedTransaction.model_validate(valid_item())
    detail = TransactionAuthorized(
        transaction_id=transaction.transaction_id,
        screening=Screening(valid=True, fingerprint=FINGERPRINT),
        transaction=transaction,
    ).to_detail()

    screening_outcomes.handler(delivered(detail), lambda_context)

    assert drain(tap) == []
    assert drain(notifications) == []
    output = logs()
    assert "ignored a transaction" in output
    assert TOKEN not in output


def test_a_flagged_duplicate_records_its_latency_from_the_authorization(
    tap: str, notifications: str, lambda_context: Any, logs: Callable[[], str]
) -> None:
    five_seconds_ago = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    transaction = AuthorizedTransaction.model_validate(
        valid_item(transactionId="retry-0000003", transmittedAt=five_seconds_ago)
    )
    detail = TransactionAuthorized(
        transaction_id=transaction.transaction_id,
        screening=Screening(
            valid=True, duplicate=True, duplicate_of="first-0000001", fingerprint=FINGERPRINT
        ),
        transaction=transaction,
    ).to_detail()

    screening_outcomes.handler(delivered(detail), lambda_context)

    output = logs()
    [latency] = metric_values(output, "EndToEndLatency")
    assert 5_000 <= latency < 5_000 + 60_000
    assert metric_unit(output, "EndToEndLatency") == "Milliseconds"


def test_a_quarantined_record_records_no_latency_it_has_no_trusted_time(
    tap: str, notifications: str, lambda_context: Any, logs: Callable[[], str]
) -> None:
    screening_outcomes.handler(delivered(invalid_record()), lambda_context)

    output = logs()
    assert metric_values(output, "TransactionsQuarantined") == [1.0]
    assert metric_values(output, "EndToEndLatency") == []
