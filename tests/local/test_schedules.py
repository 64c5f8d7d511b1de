"""Scheduled rules on the local runtime's clock: when they fire, and what they put."""

from __future__ import annotations

import json

import pytest

from payment_local.clients import AwsClients
from payment_local.schedules import ScheduledRule, ScheduleError, Scheduler, period_seconds
from tests.local.support import create_queue, drain


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200),
     ("rate(1 day)", 86400)],
)  # fmt: skip
def test_rate_expressions_have_their_period(expression: str, seconds: int) -> None:
    assert period_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression", ["cron(0 12 * * ? *)", "rate(1 minutes)", "rate(2 minute)", "rate(0 hours)"]
)
def test_what_eventbridge_or_the_runtime_would_not_run_is_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        period_seconds(expression)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_rule_fires_a_period_after_start_then_once_per_advance(clients: AwsClients) -> None:
    url, _ = create_queue(clients, "tap")
    clock = Clock()
    rule = ScheduledRule(name="sweep", rule_arn="arn:aws:events:eu-west-1:1:rule/sweep",
                         period_s=60, tap_urls=[url])  # fmt: skip
    scheduler = Scheduler(clients, account="1", region="eu-west-1", now=clock, rules=[rule])
    scheduler.start()

    clock.now += 59
    assert scheduler.poll() == 0
    clock.now += 1
    assert scheduler.poll() == 1
    assert scheduler.poll() == 0  # the next tick is a period later
    clock.now += 3600  # an hour in one advance: one tick, at the new time
    assert scheduler.poll() == 1

    first, second = (json.loads(m["Body"]) for m in drain(clients, url))
    assert first["detail-type"] == "Scheduled Event"
    assert first["source"] == "aws.events"
    assert first["resources"] == [rule.rule_arn]
    assert first["time"] == "2027-01-15T08:01:00Z"
    assert second["time"] == "2027-01-15T09:01:00Z"
