"""Deduplication decisions: is this sighting of a fingerprint the first within the window?

The rules, which the DynamoDB store expresses as one conditional write:

- the first sighting of a fingerprint owns it;
- a later sighting by another transaction within the window (either side, since records can
  arrive out of order) is a duplicate of the owner;
- a sighting outside the owner's window takes the fingerprint over;
- every verdict is remembered, and asking again for a transaction already judged gives that
  verdict (Pipes re-runs the enrichment when a target batch fails): a record is never its own
  duplicate, and a re-run cannot turn a first sighting into a duplicate after the
  fingerprint changed hands in between.

Times are integer milliseconds since the epoch, so both stores compare exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Sighting:
    """One transaction seen with a fingerprint."""

    transaction_id: str
    transmitted_at_ms: int


@dataclass(frozen=True)
class Verdict:
    """The outcome for one sighting: first seen, or a duplicate of an earlier transaction."""

    duplicate_of: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.duplicate_of is not None


FIRST_SIGHTING = Verdict()


@dataclass(frozen=True)
class FingerprintEntry:
    """What is stored per fingerprint: its owner and every verdict already given."""

    owner: Sighting
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def within_window(a_ms: int, b_ms: int, window_ms: int) -> bool:
    """Inclusive at the edge: exactly one window apart still counts as within."""
    return abs(a_ms - b_ms) <= window_ms


def judge(entry: FingerprintEntry | None, candidate: Sighting, window_ms: int) -> Verdict:
    """The verdict for a candidate given what is stored for its fingerprint."""
    if entry is None:
        return FIRST_SIGHTING
    if candidate.transaction_id in entry.verdicts:
        return entry.verdicts[candidate.transaction_id]
    if within_window(entry.owner.transmitted_at_ms, candidate.transmitted_at_ms, window_ms):
        return Verdict(entry.owner.transaction_id)
    return FIRST_SIGHTING


def record(
    entry: FingerprintEntry | None, candidate: Sighting, verdict: Verdict
) -> FingerprintEntry:
    """The stored entry after a verdict: a new first sighting owns, every verdict is kept."""
    if entry is not None and candidate.transaction_id in entry.verdicts:
        return entry  # a re-run changes nothing
    verdicts = {**(entry.verdicts if entry else {}), candidate.transaction_id: verdict}
    owner = candidate if entry is None or verdict.duplicate_of is None else entry.owner
    return FingerprintEntry(owner=owner, verdicts=verdicts)


class FingerprintStore(Protocol):
    """Where fingerprints are kept; ``screen`` judges and records in one atomic step."""

    def screen(self, fingerprint: str, candidate: Sighting, window_ms: int) -> Verdict: ...


class InMemoryFingerprintStore:
    """The reference semantics, for unit tests and as the specification of the DynamoDB store."""

    def __init__(self) -> None:
        self.entries: dict[str, FingerprintEntry] = {}

    def screen(self, fingerprint: str, candidate: Sighting, window_ms: int) -> Verdict:
        entry = self.entries.get(fingerprint)
        verdict = judge(entry, candidate, window_ms)
        self.entries[fingerprint] = record(entry, candidate, verdict)
        return verdict
