"""Latency values as the metrics print them: to the millisecond, never a long digit run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from payment_posting_functions.domain.latency import milliseconds_since, oldest_age_seconds

LONG_DIGIT_RUN = re.compile(r"\d{13,}")


def test_milliseconds_since_is_whole_milliseconds() -> None:
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    # 2.148123 s: the float product is 2148.1229999999996, a 17-digit run when printed.
    now = moment + timedelta(microseconds=2_148_123)

    assert milliseconds_since(moment, now) == 2148
    assert milliseconds_since(now, moment) == 0  # a clock ahead reads as zero


def test_oldest_age_is_seconds_to_the_millisecond() -> None:
    now = 1_764_590_400.9771888
    ages = [now - 0.4634683132171631, None, now - 0.2046494483947754]

    assert oldest_age_seconds(ages, now) == 0.463
    assert oldest_age_seconds([None], now) is None
    assert oldest_age_seconds([now + 5], now) == 0


def test_printed_values_hold_no_run_a_card_scan_could_trip_on() -> None:
    # What EMF prints: the metric's values as a JSON list.
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    values = [
        oldest_age_seconds([1_764_590_400.0], 1_764_590_400.0 + step / 7919)
        for step in range(1, 500)
    ] + [
        milliseconds_since(moment, moment + timedelta(microseconds=step * 7919))
        for step in range(1, 500)
    ]

    assert LONG_DIGIT_RUN.findall(json.dumps(values)) == []
