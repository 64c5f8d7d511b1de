"""Scheduled rules, fired by the local runtime on a clock it can advance.

moto keeps a rule's ``ScheduleExpression`` but never fires it. Here a scheduled rule's targets
are tap queues like any other rule's (so delivery, retries and the access check are the
same), and the runtime puts the event EventBridge would put there, ``Scheduled Event`` from
``aws.events`` with the tick's ``time``, once a period has passed on the runtime's clock.

The clock is the wall clock plus an offset that ``LocalRuntime.advance_time`` moves forward:
a test or a demo can let a day pass in an instant. An advance over many periods fires each
rule once, at the new time, rather than once per skipped tick: the sweeps a schedule drives
do all that is due at their time, so the skipped ticks would have found less. Only
``rate(...)`` expressions run; a ``cron(...)`` schedule is refused when the stack starts.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """A schedule expression the local runtime cannot run."""


def period_seconds(expression: str) -> int:
    """The period of ``rate(N unit)`` in seconds (EventBridge's singular for N = 1 only)."""
    match = _RATE.match(expression.strip())
    if match is None:
        raise ScheduleError(
            f"only rate(...) schedules run locally, not {expression!r} (cron is not supported)"
        )
    count, unit = int(match.group(1)), match.group(2)
    if count < 1 or (count == 1) != (not unit.endswith("s")):
        raise ScheduleError(f"not a valid rate expression: {expression!r}")
    return count * _UNIT_SECONDS[unit.rstrip("s")]


@dataclass
class ScheduledRule:
    name: str
    rule_arn: str
    period_s: int
    tap_urls: list[str] = field(default_factory=list)
    next_at: float | None = None  # the next tick, on the runtime's clock
    fired: int = 0


@dataclass
class Scheduler:
    """Fires the scheduled rules whose next tick has come (``poll``)."""

    clients: Any
    account: str
    region: str
    now: Callable[[], float]
    rules: list[ScheduledRule] = field(default_factory=list)

    def start(self) -> None:
        """Like EventBridge, a rule first fires one period after it is created."""
        started = self.now()
        for rule in self.rules:
            rule.next_at = started + rule.period_s

    def poll(self) -> int:
        at = self.now()
        fired = 0
        for rule in self.rules:
            if rule.next_at is None or at < rule.next_at:
                continue
            event = self._event(rule, at)
            for url in rule.tap_urls:
                self.clients.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            # The next tick is a whole period after this one, however late this one was.
            rule.next_at = at + rule.period_s
            rule.fired += 1
            fired += 1
        return fired

    def _event(self, rule: ScheduledRule, at: float) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(at, UTC).replace(microsecond=0)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": stamp.isoformat().replace("+00:00", "Z"),
            "region": self.region,
            "resources": [rule.rule_arn],
            "detail": {},
        }
