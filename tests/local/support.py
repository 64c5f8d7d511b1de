"""Helpers shared by the local-runtime tests: functions, queues and reading them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from payment_local.clients import AwsClients
from payment_local.functions import LocalFunction

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"
HANDLERS = "tests.local.fixture_handlers"


def make_function(handler: str, name: str | None = None) -> LocalFunction:
    """A function running ``tests.local.fixture_handlers.<handler>`` from the project root."""
    name = name or handler
    return LocalFunction(
        logical_id=name,
        name=name,
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        handler=f"{HANDLERS}.{handler}",
        code_path=PROJECT_ROOT,
        environment={},
    )


def create_queue(
    clients: AwsClients, name: str, attributes: dict[str, str] | None = None
) -> tuple[str, str]:
    """Create a queue; return (url, arn)."""
    url: str = clients.sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn: str = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return url, arn


def queue_depth(clients: AwsClients, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def drain(clients: AwsClients, url: str) -> list[dict[str, Any]]:
    """Receive and delete every visible message of a queue, in order."""
    messages: list[dict[str, Any]] = []
    while True:
        received = clients.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return messages
        messages += received
        clients.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received)
            ],
        )


def drain_bodies(clients: AwsClients, url: str) -> list[Any]:
    """The JSON bodies of every visible message of a queue (which is emptied)."""
    return [json.loads(message["Body"]) for message in drain(clients, url)]
