"""Ingest screening: every record read from the table becomes one ``TransactionAuthorized``.

A well-formed record is fingerprinted and judged against earlier sightings; a malformed one
is passed on flagged invalid with a reason, never dropped and never failing its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from payment_posting_functions.domain.dedup import FingerprintStore, Sighting, epoch_millis
from payment_posting_functions.domain.events import Screening, StreamPosition, TransactionAuthorized
from payment_posting_functions.domain.fingerprint import fingerprint
from payment_posting_functions.domain.pan import contains_card_number
from payment_posting_functions.domain.quarantine import refused_and_kept
from payment_posting_functions.domain.transaction import (
    AuthorizedTransaction,
    describe_validation_error,
)
from payment_posting_functions.domain.transaction_table import EXPIRES_AT

REDACTED_KEY_PREFIX = "redacted-key-"


@dataclass(frozen=True)
class InvalidRecord:
    """A record that failed validation: its id, why, where it came from, and what to keep.

    ``refused_fields`` names what validation refused; ``kept`` is every other field with its
    value, which is what the quarantine stores (see ``domain.quarantine``).
    """

    transaction_id: str
    reason: str
    origin: StreamPosition
    refused_fields: tuple[str, ...] = ()
    kept: Mapping[str, Any] = field(default_factory=dict)


def stream_position(keys: Mapping[str, str], sequence_number: str | None) -> StreamPosition:
    """Where a record came from, with any key value that holds a card number redacted.

    The key comes from the stream before any validation, so it is the one place a card number
    written as a transaction id would otherwise travel on. It is replaced by a name made from
    the stream sequence number: unique, and derived from nothing the card holder owns.
    """
    safe = {
        name: redacted_key(sequence_number) if contains_card_number(value) else value
        for name, value in keys.items()
    }
    return StreamPosition(table_key=safe, sequence_number=sequence_number)


def redacted_key(sequence_number: str | None) -> str:
    """What stands for a key that held a card number: ``redacted-key-<sequence number>``."""
    return f"{REDACTED_KEY_PREFIX}{sequence_number or 'unknown'}"


def parse_record(
    item: Mapping[str, Any], origin: StreamPosition
) -> AuthorizedTransaction | InvalidRecord:
    """Validate a table item; a failure becomes an InvalidRecord whose reason names no value."""
    # The expiry is the table's storage metadata, not part of the authorization.
    record = {name: value for name, value in item.items() if name != EXPIRES_AT}
    try:
        return AuthorizedTransaction.model_validate(record)
    except ValidationError as error:
        refused, kept = refused_and_kept(record, error)
        return InvalidRecord(
            transaction_id=record_id(origin),
            reason=describe_validation_error(error),
            origin=origin,
            refused_fields=refused,
            kept=kept,
        )


def record_id(origin: StreamPosition) -> str:
    """The transaction id to report for a record that failed validation (already redacted)."""
    return origin.table_key.get("transactionId") or "unknown"


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
