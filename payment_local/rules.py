"""Rule targets moto cannot deliver to: Lambda functions and Step Functions state machines.

moto matches events against rules and delivers to SQS targets, but a Lambda or Step Functions
target makes ``put_events`` fail. So each such target is registered in moto as a *tap queue*
of its own (moto still decides what matches), and the dispatcher here takes events off the
tap and hands them over the way AWS does:

- a Lambda target is an asynchronous invocation: on a function error Lambda retries twice
  (``MaximumRetryAttempts`` of the function's event invoke config), then sends the event to
  the function's on-failure destination or dead-letter queue, if it has one;
- a Step Functions target starts an execution; if the start itself fails, EventBridge retries
  per the target's ``RetryPolicy`` and then sends the event to the target's dead-letter queue.

Retries happen at once rather than after AWS's back-off, which keeps runs deterministic.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from moto.events.utils import EventTemplateParser

from payment_local.functions import FunctionError, LocalFunction


class Delivery(Protocol):
    def deliver(self, payload: Any) -> None: ...


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0  # failed for good with nowhere to go, as AWS would drop it


@dataclass
class AsyncLambdaInvocation:
    """EventBridge -> Lambda: an asynchronous invocation with Lambda's retries."""

    function: LocalFunction
    clients: Any
    maximum_retry_attempts: int = 2
    on_failure_queue_url: str | None = None
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def deliver(self, payload: Any) -> None:
        error: FunctionError | None = None
        for attempt in range(1 + self.maximum_retry_attempts):
            try:
                self.function.invoke(payload)
                self.stats.delivered += 1
                return
            except FunctionError as failure:
                error = failure
                if attempt < self.maximum_retry_attempts:
                    self.stats.retried += 1
        assert error is not None
        _fail(self.clients, self.stats, self.on_failure_queue_url, payload, error)


@dataclass
class StateMachineExecution:
    """EventBridge -> Step Functions: StartExecution with the target's retry policy."""

    state_machine_arn: str
    clients: Any
    maximum_retry_attempts: int = 185
    dead_letter_queue_url: str | None = None
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def deliver(self, payload: Any) -> None:
        error: Exception | None = None
        for attempt in range(1 + self.maximum_retry_attempts):
            try:
                self.clients.stepfunctions.start_execution(
                    stateMachineArn=self.state_machine_arn,
                    # Unnamed executions collide in moto; AWS would generate a unique name.
                    name=str(uuid.uuid4()),
                    input=json.dumps(payload),
                )
                self.stats.delivered += 1
                return
            except Exception as failure:  # an API error, as EventBridge would see it
                error = failure
                if attempt < self.maximum_retry_attempts:
                    self.stats.retried += 1
        assert error is not None
        _fail(self.clients, self.stats, self.dead_letter_queue_url, payload, error)


def _fail(
    clients: Any, stats: DeliveryStats, queue_url: str | None, payload: Any, error: Exception
) -> None:
    if queue_url is None:
        stats.dropped += 1
        return
    stats.dead_lettered += 1
    clients.sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(payload),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": type(error).__name__},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(error)[:256]},
        },
    )


def tap_registration(target_id: str, queue_arn: str) -> dict[str, Any]:
    """The moto rule target for a tap queue: the whole event, as AWS hands it to a target.

    moto's plain SQS rendering drops ``account``; rendering the event itself keeps every
    field, including moto's ``ingestion-time``, which its input transformer needs.
    """
    return {
        "Id": target_id,
        "Arn": queue_arn,
        "InputTransformer": {"InputTemplate": "<aws.events.event.json>"},
    }


@dataclass
class TapTarget:
    """One Lambda or Step Functions target of one rule, fed through its tap queue."""

    rule_name: str
    target_id: str
    queue_url: str
    delivery: Delivery
    input_constant: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None

    def transform(self, tapped: dict[str, Any]) -> Any:
        """Apply Input, InputPath or InputTransformer, which moto applies only partly."""
        event = {k: v for k, v in tapped.items() if k != "ingestion-time"}  # moto's own field
        if self.input_constant is not None:
            return json.loads(self.input_constant)
        if self.input_path is not None:
            return _json_path(event, self.input_path)
        if self.input_transformer is not None:
            parser: Any = EventTemplateParser  # moto's renderer, the one its SQS targets use
            return parser.parse(
                input_template=self.input_transformer.get("InputTemplate"),
                input_paths_map=self.input_transformer.get("InputPathsMap", {}),
                event=tapped,
            )
        return event


def _json_path(document: Any, path: str) -> Any:
    # EventBridge InputPath is a plain dotted path ("$.detail", "$.detail.transaction").
    value = document
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            value = value[part]
    return value


@dataclass
class RuleDispatcher:
    """Moves events from tap queues to their Lambda and Step Functions targets."""

    clients: Any
    targets: list[TapTarget] = field(default_factory=list)

    def poll(self) -> int:
        work = 0
        for target in self.targets:
            while True:
                messages = self.clients.sqs.receive_message(
                    QueueUrl=target.queue_url, MaxNumberOfMessages=10
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    target.delivery.deliver(target.transform(json.loads(message["Body"])))
                self.clients.sqs.delete_message_batch(
                    QueueUrl=target.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages)
                    ],
                )
                work += len(messages)
        return work
