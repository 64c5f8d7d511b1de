"""Lambda event-source mappings from SQS, which moto defines but must not run itself.

(moto's own mapping invokes the handler inside ``send_message``, one message at a time.)
As Lambda does: receive up to ``BatchSize`` messages, invoke the function with them, delete
them on success. On a function error the whole batch returns to the queue; with
``ReportBatchItemFailures`` only the messages the function names return, and a response that
names a message not in the batch fails the whole batch. Returned messages are made visible at
once instead of after the visibility timeout (in moto, several timing out together are not all
redelivered), and the queue's redrive policy moves a message to its dead-letter queue after
``maxReceiveCount`` receives, which moto does on receive.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from payment_local.functions import FunctionError, LocalFunction

SQS_RECEIVE_LIMIT = 10


@dataclass
class EventSourceStats:
    batches: int = 0
    messages: int = 0
    messages_returned: int = 0
    redeliveries: int = 0  # receives of a message received before (retries)
    function_errors: int = 0
    receives_refused: int = 0  # the function's role may not read the queue
    deletes_refused: int = 0


@dataclass
class SqsEventSource:
    """One ``AWS::Lambda::EventSourceMapping`` from a queue to a function."""

    function: LocalFunction
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    clients: Any
    region: str = "eu-west-1"
    stats: EventSourceStats = field(default_factory=EventSourceStats)
    # Lambda polls and deletes with the function's role; making a returned message visible at
    # once is the runtime's own shortcut, not a call Lambda makes, so it stays unchecked.
    runtime_clients: Any = None

    def run_as(self, clients: Any) -> None:
        """Receive and delete with ``clients`` (signed as the function's role)."""
        self.runtime_clients = self.runtime_clients or self.clients
        self.clients = clients

    def poll(self) -> int:
        try:
            messages = self._receive()
        except ClientError:
            self.stats.receives_refused += 1
            return 0
        if not messages:
            return 0
        self.stats.batches += 1
        self.stats.messages += len(messages)
        self.stats.redeliveries += sum(
            int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1 for m in messages
        )
        failed = self._invoke(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        returned = [m for m in messages if m["MessageId"] in failed]
        if done:
            try:
                self.clients.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(done)
                    ],
                )
            except ClientError:
                # Undeleted, they come back after the visibility timeout (here: at once) and
                # reach the dead-letter queue after maxReceiveCount, as on AWS.
                self.stats.deletes_refused += 1
                returned += done
        if returned:
            self.stats.messages_returned += len(returned)
            (self.runtime_clients or self.clients).sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(returned)
                ],
            )
        return len(messages)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            received = self.clients.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_LIMIT, self.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages += received
        return messages

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the function; return the ids of the messages that go back to the queue."""
        all_ids = {m["MessageId"] for m in messages}
        try:
            response = self.function.invoke({"Records": [self._record(m) for m in messages]})
        except FunctionError:
            self.stats.function_errors += 1
            return all_ids
        if not self.report_batch_item_failures or not isinstance(response, dict):
            return set()
        failures = response.get("batchItemFailures") or []
        named = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
        if not named <= all_ids or len(named) != len(failures):
            return all_ids  # Lambda treats a response it cannot match as a failed batch
        return {str(identifier) for identifier in named}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    # Lambda hands binary attributes over base64-encoded, as JSON must.
                    "binaryValue": base64.b64encode(value["BinaryValue"]).decode()
                    if "BinaryValue" in value
                    else None,
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }
