"""Which dead-letter queues the template has, and what fills each: read from the template.

Every kind of dead-letter queue holds something different, so each needs its own redrive:

- ``queue``: a queue's redrive policy moved messages there after ``maxReceiveCount``
  receives; they go back to that queue;
- ``rule-target``: EventBridge could not deliver an event to a rule's target; it goes to
  that target again;
- ``async-invoke``: a function invoked asynchronously failed every retry; the record holds
  the event (``requestPayload``), which goes to the function again;
- ``pipe``: a pipe gave up on a batch of stream records; the message locates the records in
  the stream, it does not hold them, so its redrive re-reads the items from the table;
- ``bus``: the event bus could not deliver an event to a target (e.g. a key it may not
  use); the message names the target when EventBridge knows it.

A queue may be all of these at once for different writers (the posting queue's DLQ is both
the queue's and its rule target's); a redrive tells messages apart by their shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

QUEUE_TYPE = "AWS::SQS::Queue"
HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")


@dataclass(frozen=True)
class Writer:
    """One thing that writes a dead-letter queue."""

    kind: str  # queue | rule-target | async-invoke | pipe | bus
    source: str  # logical id of the queue, rule, function, pipe or bus
    target: Any = None  # for rule-target: the target's Arn expression (unresolved)


@dataclass
class DeadLetterQueue:
    logical_id: str
    name: str  # what a user types: "posting", "ingest", "rules-engine"
    writers: list[Writer] = field(default_factory=list)
    output: str | None = None  # the stack output that holds its URL, if any

    @property
    def kinds(self) -> list[str]:
        return sorted({writer.kind for writer in self.writers})


def _ref_of(expression: Any) -> str | None:
    """The logical id an ``Fn::GetAtt``/``Ref`` expression names."""
    if isinstance(expression, dict):
        if "Fn::GetAtt" in expression:
            attribute = expression["Fn::GetAtt"]
            return str(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0])
        if "Ref" in expression:
            return str(expression["Ref"])
    return None


def user_name(logical_id: str) -> str:
    """``PostingExpirySweeperDeadLetterQueueB7B4CF53`` -> ``posting-expiry-sweeper``."""
    stem = HASH_SUFFIX.sub("", logical_id).removesuffix("DeadLetterQueue").removesuffix("Queue")
    stem = stem or logical_id
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", stem).lower()


def dead_letter_queues(template: dict[str, Any]) -> dict[str, DeadLetterQueue]:
    """Every queue some resource sends what it gave up on to, by user name."""
    resources: dict[str, Any] = template.get("Resources", {})
    writers: dict[str, list[Writer]] = {}

    def add(expression: Any, writer: Writer) -> None:
        queue = _ref_of(expression)
        if queue and resources.get(queue, {}).get("Type") == QUEUE_TYPE:
            writers.setdefault(queue, []).append(writer)

    for logical_id, resource in resources.items():
        props = resource.get("Properties", {}) or {}
        kind = resource.get("Type")
        if kind == QUEUE_TYPE and isinstance(props.get("RedrivePolicy"), dict):
            add(props["RedrivePolicy"].get("deadLetterTargetArn"), Writer("queue", logical_id))
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets", []) or []:
                config = target.get("DeadLetterConfig") or {}
                add(config.get("Arn"), Writer("rule-target", logical_id, target.get("Arn")))
        elif kind == "AWS::Lambda::EventInvokeConfig":
            on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
                "Destination"
            )
            function = _ref_of(props.get("FunctionName"))
            if function:
                add(on_failure, Writer("async-invoke", function))
        elif kind == "AWS::Lambda::Function":
            add((props.get("DeadLetterConfig") or {}).get("TargetArn"),
                Writer("async-invoke", logical_id))  # fmt: skip
        elif kind == "AWS::Pipes::Pipe":
            for parameters in (props.get("SourceParameters") or {}).values():
                if isinstance(parameters, dict) and "DeadLetterConfig" in parameters:
                    add(parameters["DeadLetterConfig"].get("Arn"), Writer("pipe", logical_id))
        elif kind == "AWS::Events::EventBus":
            add((props.get("DeadLetterConfig") or {}).get("Arn"), Writer("bus", logical_id))
    outputs = {
        _ref_of(output.get("Value")): name
        for name, output in (template.get("Outputs") or {}).items()
    }
    found: dict[str, DeadLetterQueue] = {}
    for logical_id, queue_writers in sorted(writers.items()):
        name = user_name(logical_id)
        found[name] = DeadLetterQueue(logical_id, name, queue_writers, outputs.get(logical_id))
    return found


def main_queues(template: dict[str, Any]) -> list[str]:
    """The queues that are not dead-letter queues (the posting queue), by logical id."""
    dead = {queue.logical_id for queue in dead_letter_queues(template).values()}
    return sorted(
        logical_id
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == QUEUE_TYPE and logical_id not in dead
    )
