"""The SQS event-source mapping: batches, deletes, partial failures and the DLQ, on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payment_local.clients import AwsClients
from payment_local.sqs_source import SqsEventSource
from tests.local import fixture_handlers
from tests.local.fixture_handlers import CALLS, POISON
from tests.local.support import REGION, create_queue, drain, make_function, queue_depth


def _source(
    clients: AwsClients,
    handler: str,
    *,
    batch_size: int = 10,
    report_batch_item_failures: bool = False,
    attributes: dict[str, str] | None = None,
) -> SqsEventSource:
    url, arn = create_queue(clients, "work", attributes)
    return SqsEventSource(
        function=make_function(handler),
        queue_url=url,
        queue_arn=arn,
        batch_size=batch_size,
        report_batch_item_failures=report_batch_item_failures,
        clients=clients,
        region=REGION,
    )


def _send(clients: AwsClients, source: SqsEventSource, *bodies: str) -> list[str]:
    """Send the bodies; return their message ids."""
    return [
        clients.sqs.send_message(QueueUrl=source.queue_url, MessageBody=body)["MessageId"]
        for body in bodies
    ]


def _bodies(event: dict[str, Any]) -> list[str]:
    return [record["body"] for record in event["Records"]]


def test_a_successful_batch_is_deleted(clients: AwsClients) -> None:
    source = _source(clients, "always_ok")
    _send(clients, source, "a", "b", "c")

    assert source.poll() == 3

    assert [sorted(_bodies(event)) for event in CALLS["always_ok"]] == [["a", "b", "c"]]
    assert queue_depth(clients, source.queue_url) == (0, 0)
    assert source.poll() == 0
    assert len(CALLS["always_ok"]) == 1


def test_the_event_has_the_lambda_sqs_shape(clients: AwsClients) -> None:
    source = _source(clients, "always_ok")
    clients.sqs.send_message(
        QueueUrl=source.queue_url,
        MessageBody=json.dumps({"amount": 5}),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "payment"}},
    )
    source.poll()

    (record,) = CALLS["always_ok"][0]["Records"]
    assert json.loads(record["body"]) == {"amount": 5}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == source.queue_arn
    assert record["awsRegion"] == REGION
    assert record["messageId"]
    assert record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in record["attributes"]
    assert record["messageAttributes"]["kind"]["stringValue"] == "payment"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"


def test_a_failed_batch_returns_to_the_queue_at_once(clients: AwsClients) -> None:
    source = _source(clients, "fail_on_poison")
    _send(clients, source, "a", POISON, "c")

    source.poll()

    assert queue_depth(clients, source.queue_url) == (3, 0)  # visible again, not in flight
    assert source.stats.function_errors == 1
    assert source.stats.messages_returned == 3

    source.poll()  # received again on the next poll, all three
    second = CALLS["fail_on_poison"][1]
    assert sorted(_bodies(second)) == sorted(["a", POISON, "c"])
    assert {r["attributes"]["ApproximateReceiveCount"] for r in second["Records"]} == {"2"}


def test_reported_item_failures_return_only_those_messages(clients: AwsClients) -> None:
    source = _source(clients, "report_poison", report_batch_item_failures=True)
    ids = _send(clients, source, "a", POISON, "c")

    source.poll()

    assert queue_depth(clients, source.queue_url) == (1, 0)
    (left,) = drain(clients, source.queue_url)
    assert left["MessageId"] == ids[1]
    assert left["Body"] == POISON
    assert source.stats.messages_returned == 1
    assert source.stats.function_errors == 0


def test_a_response_naming_an_unknown_message_fails_the_whole_batch(clients: AwsClients) -> None:
    source = _source(clients, "report_unknown", report_batch_item_failures=True)
    _send(clients, source, "a", "b")

    source.poll()

    assert queue_depth(clients, source.queue_url) == (2, 0)
    assert source.stats.messages_returned == 2


def test_without_report_batch_item_failures_the_response_is_ignored(clients: AwsClients) -> None:
    source = _source(clients, "report_poison", report_batch_item_failures=False)
    _send(clients, source, "a", POISON, "c")

    source.poll()

    assert queue_depth(clients, source.queue_url) == (0, 0)
    assert source.stats.messages_returned == 0


def test_a_poison_message_moves_to_the_dlq_after_max_receive_count(clients: AwsClients) -> None:
    dlq_url, dlq_arn = create_queue(clients, "work-dlq")
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    source = _source(clients, "fail_on_poison", attributes={"RedrivePolicy": json.dumps(redrive)})
    _send(clients, source, POISON)

    polls = 0
    while source.poll():
        polls += 1
        assert polls <= 10, "the poison message never left the queue"

    assert len(CALLS["fail_on_poison"]) == 3
    assert queue_depth(clients, source.queue_url) == (0, 0)
    (dead,) = drain(clients, dlq_url)
    assert dead["Body"] == POISON


@pytest.mark.parametrize(
    ("messages", "batch_size", "expected"),
    [(25, 10, [10, 10, 5]), (25, 25, [25]), (7, 3, [3, 3, 1])],
)
def test_batch_size_is_respected(
    clients: AwsClients, messages: int, batch_size: int, expected: list[int]
) -> None:
    source = _source(clients, "always_ok", batch_size=batch_size)
    _send(clients, source, *(f"m{n}" for n in range(messages)))

    while source.poll():
        pass

    assert [len(event["Records"]) for event in CALLS["always_ok"]] == expected
    seen = [body for event in CALLS["always_ok"] for body in _bodies(event)]
    assert sorted(seen) == sorted(f"m{n}" for n in range(messages))
    assert queue_depth(clients, source.queue_url) == (0, 0)


def test_a_function_failing_once_gets_the_batch_again(clients: AwsClients) -> None:
    fixture_handlers.FAILURES_LEFT["flaky"] = 1
    source = _source(clients, "flaky")
    _send(clients, source, "a", "b")

    while source.poll():
        pass

    assert [sorted(_bodies(event)) for event in CALLS["flaky"]] == [["a", "b"], ["a", "b"]]
    assert queue_depth(clients, source.queue_url) == (0, 0)


def test_a_binary_message_attribute_arrives_base64_encoded(clients: AwsClients) -> None:
    source = _source(clients, "always_ok")
    clients.sqs.send_message(
        QueueUrl=source.queue_url,
        MessageBody="x",
        MessageAttributes={"blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}},
    )
    source.poll()
    (record,) = CALLS["always_ok"][0]["Records"]
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AQI="
