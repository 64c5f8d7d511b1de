"""The accounts table: the directory enrichment reads, and where sample accounts are seeded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from payment_posting_functions.domain.accounts import Account


class AccountTable:
    """A ``AccountDirectory`` on DynamoDB (a boto3 ``Table`` resource)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def find(self, account_id: str) -> Account | None:
        item = self._table.get_item(Key={"accountId": account_id}).get("Item")
        return Account.model_validate(item) if item else None

    def put_all(self, accounts: Iterable[Account]) -> int:
        count = 0
        with self._table.batch_writer() as batch:
            for account in accounts:
                batch.put_item(Item=account.to_item())
                count += 1
        return count
