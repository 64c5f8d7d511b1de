"""Writes authorized transaction records to the transactions table (the pipeline's inbox)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# The table's time-to-live attribute: epoch seconds after which DynamoDB deletes the item
# (within days, not at the second: reads must not rely on an expired item being gone).
EXPIRES_AT = "expiresAt"


class TransactionTable:
    """The table the pipe reads from; a write here is what starts a transaction's lifecycle."""

    def __init__(
        self,
        table: Any,
        retention: timedelta | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``table`` is a boto3 ``dynamodb.Table`` resource; ``retention`` sets each item's
        expiry (the stage's retention, from the stack), unless the item brings its own."""
        self._table = table
        self._retention = retention
        self._clock = clock

    def put_all(self, items: Iterable[dict[str, Any]]) -> int:
        """Write every item, retrying unprocessed ones (the batch writer does); return the count."""
        count = 0
        with self._table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=self._with_expiry(item))
                count += 1
        return count

    def delete(self, key: Mapping[str, Any]) -> None:
        """Remove one item; deleting an item already gone succeeds, so a retry is harmless."""
        self._table.delete_item(Key=dict(key))

    def _with_expiry(self, item: dict[str, Any]) -> dict[str, Any]:
        if self._retention is None or EXPIRES_AT in item:
            return item
        return {**item, EXPIRES_AT: int((self._clock() + self._retention).timestamp())}
