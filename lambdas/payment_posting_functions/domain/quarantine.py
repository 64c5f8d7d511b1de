"""Quarantine: a record that failed screening, kept without the values screening refused.

The record leaves the transactions table (the table must not keep what was refused: a card
number written into a token or an id) and is kept here instead, for an operator to read and
correct, with its reason and the names of the refused fields, until its retention expires.
Keyed by transaction id (redacted if it held a card number) and stream sequence number, so a
retried batch writes the same item again and two records under one id never overwrite each
other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from payment_posting_functions.domain.pan import contains_card_number, redact_card_numbers
from payment_posting_functions.domain.transaction_table import EXPIRES_AT

NO_SEQUENCE = "unknown"


def refused_and_kept(
    item: Mapping[str, Any], error: ValidationError | None
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The names of the fields validation refused, and every other field with its value.

    A field that failed validation may hold anything (a card number, free text): only its name
    is kept, redacted in case the name itself carries one. A field that passed validation holds
    no card number (every field refuses them, by check or by format); the last check below is
    the guard against a field added to the record without one.
    """
    refused: set[str] = set()
    if error is not None:
        for detail in error.errors(include_input=False, include_url=False):
            if detail["loc"]:
                refused.add(str(detail["loc"][0]))
    kept: dict[str, Any] = {}
    for name, value in item.items():
        if name == EXPIRES_AT:
            continue  # storage metadata, set again for the quarantine's own retention
        if name in refused or contains_card_number(name + json.dumps(value, default=str)):
            refused.add(name)
            continue
        kept[name] = value
    return tuple(sorted(redact_card_numbers(name) for name in refused)), kept


class QuarantineStore:
    """Writes quarantined records to their table (a boto3 ``dynamodb.Table`` resource)."""

    def __init__(
        self,
        table: Any,
        retention: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table
        self._retention = retention
        self._clock = clock

    def keep(
        self,
        *,
        transaction_id: str,
        sequence_number: str | None,
        reason: str,
        refused_fields: tuple[str, ...],
        kept: Mapping[str, Any],
    ) -> None:
        now = self._clock()
        self._table.put_item(
            Item={
                "transactionId": transaction_id,
                "sequenceNumber": sequence_number or NO_SEQUENCE,
                "reason": reason,
                "refusedFields": list(refused_fields),
                "record": dict(kept),
                "quarantinedAt": now.isoformat(),
                EXPIRES_AT: int((now + self._retention).timestamp()),
            }
        )
