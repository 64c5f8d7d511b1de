"""Writes authorized transaction records to the transactions table (the pipeline's inbox)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class TransactionTable:
    """The table the pipe reads from; a write here is what starts a transaction's lifecycle."""

    def __init__(self, table: Any) -> None:
        """``table`` is a boto3 ``dynamodb.Table`` resource."""
        self._table = table

    def put_all(self, items: Iterable[dict[str, Any]]) -> int:
        """Write every item, retrying unprocessed ones (the batch writer does); return the count."""
        count = 0
        with self._table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
                count += 1
        return count
