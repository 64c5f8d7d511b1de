"""Rule targets delivered by the runtime: Lambda functions, Step Functions state machines and
SQS queues.

moto matches events against rules, but a Lambda or Step Functions target makes
``put_events`` fail, and moto's own SQS delivery checks no policy. So each target is
registered in moto as a *tap queue* of its own (moto still decides what matches), and the
dispatcher here takes events off the tap and hands them over the way AWS does:

- a Lambda target is an asynchronous invocation: on a function error Lambda retries twice
  (``MaximumRetryAttempts`` of the function's event invoke config), then sends the event to
  the function's on-failure destination or dead-letter queue, if it has one, as the
  function's role;
- a Step Functions target starts an execution as the target's role; if the start itself
  fails, EventBridge retries per the target's ``RetryPolicy`` and then sends the event to the
  target's dead-letter queue;
- an SQS target is a send by EventBridge.

With the access check on (``eventbridge``), EventBridge acts as its service principal for
the rule: a target's resource policy (or the role's trust policy) and the keys involved must
allow it, and a refusal is not retried: the event goes to the target's dead-letter queue,
which EventBridge must be allowed to write too. Other retries happen at once rather than
after AWS's back-off, which keeps runs deterministic.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError
from moto.events.utils import EventTemplateParser

from payment_local.access.authorizer import AccessDenied, Authorizer
from payment_local.access.calls import EVENTS_SERVICE, bus_read_checks, service_delivery_checks
from payment_local.functions import FunctionError, LocalFunction


class Delivery(Protocol):
    def deliver(self, payload: Any) -> None: ...


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0  # failed for good with nowhere to go, as AWS would drop it
    refused: int = 0  # a permission was missing (never retried, as on AWS)


@dataclass
class EventBridgeAccess:
    """What EventBridge itself must be allowed, as the service principal, for one target:
    read the (encrypted) event, deliver it, and write the target's dead-letter queue."""

    authorizer: Authorizer
    rule_arn: str
    bus_arn: str

    def refused(self, target_arn: str | None = None, action: str = "") -> AccessDenied | None:
        model = self.authorizer.model
        checks = bus_read_checks(model, self.bus_arn)
        if target_arn is not None:
            checks += service_delivery_checks(model, target_arn, action, self.rule_arn)
        return self.authorizer.check(self.authorizer.service(EVENTS_SERVICE), checks)


@dataclass
class TargetDeadLetter:
    """A rule target's dead-letter queue, written by EventBridge with its service principal."""

    clients: Any
    queue_url: str | None = None
    queue_arn: str | None = None

    def send(
        self,
        stats: DeliveryStats,
        payload: Any,
        error: Exception,
        eventbridge: EventBridgeAccess | None,
    ) -> None:
        if self.queue_url is None:
            stats.dropped += 1
            return
        arn = self.queue_arn
        if eventbridge and arn and eventbridge.refused(arn, "sqs:SendMessage"):
            stats.dropped += 1  # EventBridge cannot write its dead-letter queue either
            return
        stats.dead_lettered += 1
        _send_failure(self.clients, self.queue_url, payload, error)


def _send_failure(clients: Any, queue_url: str, payload: Any, error: Exception) -> None:
    clients.sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(payload),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": type(error).__name__},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(error)[:256]},
        },
    )


@dataclass
class AsyncLambdaInvocation:
    """EventBridge -> Lambda: an asynchronous invocation with Lambda's retries.

    Two layers fail differently: EventBridge may not be allowed to invoke the function (the
    function's resource policy), which is not retried and goes to the rule target's
    dead-letter queue; the function itself may fail, which Lambda retries and then sends,
    with the function's own role, to its on-failure destination.
    """

    function: LocalFunction
    clients: Any
    maximum_retry_attempts: int = 2
    on_failure_queue_url: str | None = None
    target_dead_letter: TargetDeadLetter | None = None
    function_clients: Any = None  # signed as the function's role, for its destination
    eventbridge: EventBridgeAccess | None = None  # None: nothing is checked
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def deliver(self, payload: Any) -> None:
        eventbridge = self.eventbridge
        refused = (
            eventbridge.refused(self.function.arn, "lambda:InvokeFunction") if eventbridge else None
        )
        if refused:
            self.stats.refused += 1
            self._target_failed(payload, refused)
            return
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
        if self.on_failure_queue_url is None:
            self.stats.dropped += 1
            return
        try:
            clients = self.function_clients or self.clients
            clients.sqs.send_message(
                QueueUrl=self.on_failure_queue_url,
                MessageBody=json.dumps(self._invocation_record(payload, error)),
            )
            self.stats.dead_lettered += 1
        except ClientError:
            self.stats.dropped += 1  # the function's role may not write its destination

    def _invocation_record(self, payload: Any, error: FunctionError) -> dict[str, Any]:
        """What Lambda sends an on-failure destination: the event inside an invocation
        record, with why it failed (Lambda Developer Guide, "Capturing records of Lambda
        asynchronous invocations"), not the bare event a rule's dead-letter queue gets."""
        return {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{self.function.arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1 + self.maximum_retry_attempts,
            },
            "requestPayload": payload,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": error.error_message,
                "errorType": error.error_type,
            },
        }

    def _target_failed(self, payload: Any, error: Exception) -> None:
        if self.target_dead_letter is None:
            self.stats.dropped += 1
        else:
            self.target_dead_letter.send(self.stats, payload, error, self.eventbridge)


@dataclass
class StateMachineExecution:
    """EventBridge -> Step Functions: StartExecution as the target's role, with its retries."""

    state_machine_arn: str
    clients: Any
    maximum_retry_attempts: int = 185
    dead_letter_queue_url: str | None = None
    target_dead_letter: TargetDeadLetter | None = None
    role_arn: str | None = None
    eventbridge: EventBridgeAccess | None = None  # None: nothing is checked
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def __post_init__(self) -> None:
        if self.target_dead_letter is None:
            self.target_dead_letter = TargetDeadLetter(self.clients, self.dead_letter_queue_url)

    def deliver(self, payload: Any) -> None:
        assert self.target_dead_letter is not None
        eventbridge = self.eventbridge
        if eventbridge is not None:
            authorizer = eventbridge.authorizer
            refused = eventbridge.refused() or (
                authorizer.check_assume_role(self.role_arn, EVENTS_SERVICE, eventbridge.rule_arn)
                if self.role_arn
                else None
            )
            if refused:
                self.stats.refused += 1
                self.target_dead_letter.send(self.stats, payload, refused, eventbridge)
                return
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
                if _is_access_error(failure):
                    self.stats.refused += 1
                    break  # EventBridge does not retry a missing permission
                if attempt < self.maximum_retry_attempts:
                    self.stats.retried += 1
        assert error is not None
        self.target_dead_letter.send(self.stats, payload, error, self.eventbridge)


@dataclass
class SqsDelivery:
    """EventBridge -> SQS, delivered here so the queue and key policies can be checked."""

    queue_url: str
    queue_arn: str
    clients: Any
    message_group_id: str | None = None
    target_dead_letter: TargetDeadLetter | None = None
    eventbridge: EventBridgeAccess | None = None  # None: nothing is checked
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    def deliver(self, payload: Any) -> None:
        eventbridge = self.eventbridge
        refused = eventbridge.refused(self.queue_arn, "sqs:SendMessage") if eventbridge else None
        if refused:
            self.stats.refused += 1
            if self.target_dead_letter is None:
                self.stats.dropped += 1
            else:
                self.target_dead_letter.send(self.stats, payload, refused, eventbridge)
            return
        body = payload if isinstance(payload, str) else json.dumps(payload)
        request: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body}
        if self.queue_url.endswith(".fifo"):
            request["MessageGroupId"] = self.message_group_id or "default"
            request["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        self.clients.sqs.send_message(**request)
        self.stats.delivered += 1


def _is_access_error(error: Exception) -> bool:
    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("AccessDenied", "AccessDeniedException", "AuthorizationError")


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
    rule_arn: str = ""
    bus_arn: str = ""

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
