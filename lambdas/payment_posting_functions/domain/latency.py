"""How long a transaction took: from its authorization to an outcome, and from its write to the
transactions table to the pipe's screening. Standard library only: every handler imports it.

Clocks differ (the authorization system's, the table's, Lambda's), so a moment slightly in
the future reads as zero rather than as a negative duration.

Values are rounded to a millisecond: finer is clock noise, and a float's full repr (such as
0.4634683132171631 in a metric's list of values) is a run of 16 or 17 digits that a log scan
for card numbers cannot tell from one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime


def milliseconds_since(moment: datetime, now: datetime | None = None) -> float:
    """Milliseconds from ``moment`` (timezone-aware) to ``now`` (default: the current time),
    at least zero, to the millisecond."""
    elapsed = (now or datetime.now(UTC)) - moment
    return max(0.0, round(elapsed.total_seconds() * 1000))


def oldest_age_seconds(epoch_seconds: Iterable[float | None], now: float) -> float | None:
    """Seconds since the earliest of ``epoch_seconds`` (stream records' creation times; None
    where a record has none), at least zero, to the millisecond; None when no record has one."""
    known = [moment for moment in epoch_seconds if moment is not None]
    if not known:
        return None
    return max(0.0, round(now - min(known), 3))
