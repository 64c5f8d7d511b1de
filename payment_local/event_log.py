"""Every event put on the buses, in order, for the run's summary and ``payments-local events``.

The runtime's own observation point, not part of the template: one catch-all rule per bus
into a tap queue, drained after every step (a short queue keeps moto fast).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAP_RULE = "payments-local-event-log"
# Matches every event: EventBridge patterns need at least one field, and every event has a source.
CATCH_ALL = json.dumps({"source": [{"prefix": ""}]})


@dataclass(frozen=True)
class LoggedEvent:
    """One event as it was put on a bus, and when the runtime saw it."""

    seen_at: float
    bus: str
    source: str
    detail_type: str
    detail: dict[str, Any]

    @property
    def transaction_id(self) -> str | None:
        value = self.detail.get("transactionId")
        return str(value) if value is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "seenAt": self.seen_at,
            "bus": self.bus,
            "source": self.source,
            "detailType": self.detail_type,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoggedEvent:
        return cls(data["seenAt"], data["bus"], data["source"], data["detailType"], data["detail"])


@dataclass
class EventLog:
    """Collects the events of every bus through one tap queue."""

    clients: Any
    clock: Callable[[], float] = time.time
    events: list[LoggedEvent] = field(default_factory=list)
    by_transaction: dict[str, list[LoggedEvent]] = field(default_factory=lambda: defaultdict(list))
    _queues: dict[str, str] = field(default_factory=dict)

    def attach(self, bus_names: Iterable[str]) -> None:
        """Tap every bus named (one queue per bus, so each event knows its bus)."""
        sqs = self.clients.sqs
        for number, bus in enumerate(bus_names):
            url = sqs.create_queue(QueueName=f"payments-local-event-log-{number}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.clients.events.put_rule(Name=TAP_RULE, EventBusName=bus, EventPattern=CATCH_ALL)
            self.clients.events.put_targets(
                Rule=TAP_RULE, EventBusName=bus, Targets=[{"Id": "event-log", "Arn": arn}]
            )
            self._queues[bus] = url

    def poll(self) -> int:
        work = 0
        for bus, url in self._queues.items():
            while True:
                messages = self.clients.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10
                ).get("Messages", [])
                if not messages:
                    break
                now = self.clock()
                for message in messages:
                    event = json.loads(message["Body"])
                    self._add(
                        LoggedEvent(
                            now, bus, event["source"], event["detail-type"], event["detail"] or {}
                        )
                    )
                self.clients.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages)
                    ],
                )
                work += len(messages)
        return work

    def restore(self, event: LoggedEvent) -> None:
        """An event an earlier command logged (``state.LocalState.restore``)."""
        self._add(event)

    def _add(self, event: LoggedEvent) -> None:
        self.events.append(event)
        if event.transaction_id is not None:
            self.by_transaction[event.transaction_id].append(event)

    def save(self, path: Path) -> None:
        """Write the log as JSON lines, for ``payments-local events`` after the run."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for event in self.events:
                out.write(json.dumps(event.to_json()) + "\n")


def load_events(path: Path) -> list[LoggedEvent]:
    with path.open() as lines:
        return [LoggedEvent.from_json(json.loads(line)) for line in lines if line.strip()]
