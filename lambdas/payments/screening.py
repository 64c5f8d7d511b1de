"""Ingest screening: every record read from the table becomes one ``TransactionAuthorized``.

A well-formed record is fingerprinted and judged against earlier sightings; a malformed one
is passed on flagged invalid with a reason, never dropped and never failing its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from payments.dedup import FingerprintStore, Sighting, epoch_millis
from payments.events import Screening, StreamPosition, TransactionAuthorized
from payments.fingerprint import fingerprint
from payments.pan import looks_like_pan
from payments.transaction import AuthorizedTransaction, describe_validation_error


@dataclass(frozen=True)
class InvalidRecord:
    """A record that failed validation: its id, why, and where to find the original."""

    transaction_id: str
    reason: str
    origin: StreamPosition


def parse_record(
    item: Mapping[str, Any], origin: StreamPosition
) -> AuthorizedTransaction | InvalidRecord:
    """Validate a table item; a failure becomes an InvalidRecord whose reason names no value."""
    try:
        return AuthorizedTransaction.model_validate(item)
    except ValidationError as error:
        return InvalidRecord(
            transaction_id=safe_transaction_id(origin.table_key.get("transactionId")),
            reason=describe_validation_error(error),
            origin=origin,
        )


def safe_transaction_id(raw: str | None) -> str:
    """The key to report for an invalid record, unless it is missing or itself looks like a PAN."""
    if not raw:
        return "unknown"
    if looks_like_pan(raw):
        return "redacted-pan-like-key"
    return raw


class Screener:
    """Turns parsed records into ``TransactionAuthorized`` events, judging duplicates."""

    def __init__(
        self,
        store: FingerprintStore,
        window: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("the deduplication window must be positive")
        self._store = store
        self._window_ms = int(window.total_seconds() * 1000)
        self._clock = clock

    def screen(self, record: AuthorizedTransaction | InvalidRecord) -> TransactionAuthorized:
        if isinstance(record, InvalidRecord):
            return TransactionAuthorized(
                transaction_id=record.transaction_id,
                occurred_at=self._clock(),
                screening=Screening(valid=False, invalid_reason=record.reason),
                origin=record.origin,
            )
        digest = fingerprint(record)
        verdict = self._store.screen(
            digest,
            Sighting(record.transaction_id, epoch_millis(record.transmitted_at)),
            self._window_ms,
        )
        return TransactionAuthorized(
            transaction_id=record.transaction_id,
            occurred_at=self._clock(),
            screening=Screening(
                valid=True,
                duplicate=verdict.duplicate,
                duplicate_of=verdict.duplicate_of,
                fingerprint=digest,
            ),
            transaction=record,
        )
