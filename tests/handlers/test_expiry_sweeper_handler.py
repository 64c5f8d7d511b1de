"""The expiry sweeper's time: the scheduled event's, exactly; refused when it is not one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payment_posting_functions.handlers.expiry_sweeper import sweep_time


def test_the_sweep_runs_as_of_the_events_time() -> None:
    at = sweep_time({"time": "2026-12-01T09:30:00Z", "detail-type": "Scheduled Event"})
    assert at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_an_offset_time_is_read_in_utc() -> None:
    assert sweep_time({"time": "2026-12-01T10:30:00+01:00"}) == datetime(
        2026, 12, 1, 9, 30, tzinfo=UTC
    )


def test_invoked_by_hand_without_a_time_it_sweeps_as_of_now() -> None:
    before = datetime.now(UTC)
    at = sweep_time({})
    assert before <= at <= datetime.now(UTC) + timedelta(seconds=1)
    assert sweep_time(None) >= before


@pytest.mark.parametrize("stamp", ["yesterday", "2026-12-01T09:30:00"])
def test_a_time_that_is_not_an_instant_is_refused(stamp: str) -> None:
    with pytest.raises(ValueError, match="time"):
        sweep_time({"time": stamp})
