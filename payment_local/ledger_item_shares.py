"""How much of the posting traffic lands on any one DynamoDB item (issue 11: no hot item).

Runs N transfers of the demo's account mix through ``DynamoDBLedger`` on moto, counting per
item key (table, pk, sk) how many transfers wrote it, and prints the largest shares: of any
item, of any house item (clearing and suspense shards) and of any journal partition.

The demo's mix (``domain.generator``): 50 customer accounts in EUR chosen uniformly, 2% of
postings for an unknown account (which go to ``SUSPENSE-EUR``), the other leg on
``CLEARING-EUR``; 90% purchases (customer debited), 10% refunds.

moto copies every table for each ``TransactWriteItems``, so a long run would take quadratic
time; by default each transaction's items are applied one by one instead (``--atomic`` keeps
the real transactions). The set of items a transfer writes is the same either way, and the
run asserts that no transfer was refused (a refusal would leave half a transaction applied).

Each transfer is made by one of ``--writers`` writers picked at random, each a ledger of its
own (as each Lambda execution environment of the poster is) that puts its house legs on the
shard it leases; with one writer, every house leg lands on its one shard, and the spread
comes from the number of writers, not from the shards.

    python -m payment_local.ledger_item_shares --transfers 2000 --shards 128 --writers 100
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.house import (
    DEFAULT_SHARDS,
    clearing_account,
    suspense_account,
)
from payment_posting_functions.domain.ledger_v2.model import Transfer
from payment_posting_functions.domain.money import Money

CUSTOMERS = tuple(f"ACC-{n:04d}" for n in range(1, 51))
UNKNOWN_RATE = 0.02
REFUND_RATE = 0.10


class CountingClient:
    """Counts, per item, the transfers that wrote it (a transfer writes an item once)."""

    def __init__(self, client: Any, *, atomic: bool) -> None:
        self._client = client
        self._atomic = atomic
        self.writes: Counter[tuple[str, str, str]] = Counter()
        self.partitions: Counter[tuple[str, str]] = Counter()
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> Any:  # noqa: N803 (boto3's name)
        self.transactions += 1
        for item in TransactItems:
            ((operation, body),) = item.items()
            key = body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
            table, pk, sk = body["TableName"], key["pk"]["S"], key["sk"]["S"]
            self.writes[table, pk, sk] += 1
            self.partitions[table, pk] += 1
        if self._atomic:
            return self._client.transact_write_items(TransactItems=TransactItems)
        for item in TransactItems:
            ((operation, body),) = item.items()
            if operation == "Put":
                self._client.put_item(**body)
            else:
                self._client.update_item(**body)
        return {}


@dataclass(frozen=True)
class Shares:
    transfers: int
    largest_item: tuple[str, float]
    largest_house_item: tuple[str, float]
    largest_customer_item: tuple[str, float]
    largest_journal_partition: tuple[str, float]


def measure(
    transfers: int, shards: int, *, writers: int = 1, seed: int = 11, atomic: bool = False
) -> Shares:
    rnd = random.Random(seed)  # noqa: S311 (a reproducible sample, not cryptography)
    with mock_aws():
        counting = CountingClient(boto3.client("dynamodb", region_name="eu-west-1"), atomic=atomic)
        for definition in table_definitions("journal", "balances"):
            counting.create_table(**definition)
        ledgers = [
            DynamoDBLedger(counting, "journal", "balances", house_shards=shards)
            for _ in range(writers)
        ]
        ledger = ledgers[0]
        for account_id in CUSTOMERS:
            ledger.open_account(account_id, "EUR", credit_limit=10**9)
        for house in (clearing_account("EUR"), suspense_account("EUR")):
            ledger.open_account(house, "EUR")
        for number in range(transfers):
            customer = (
                suspense_account("EUR") if rnd.random() < UNKNOWN_RATE else rnd.choice(CUSTOMERS)
            )
            debit, credit = customer, clearing_account("EUR")
            if rnd.random() < REFUND_RATE:
                debit, credit = credit, debit
            rnd.choice(ledgers).create_transfer(
                Transfer(
                    transfer_id=f"tx-{number:07d}",
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=Money(amount=rnd.randint(100, 50_000), currency="EUR"),
                )
            )
        assert counting.transactions == transfers, "a transfer was refused or retried"
        for house in (clearing_account("EUR"), suspense_account("EUR")):
            assert ledger.balance(house).posted is not None

    def top(counter: Counter[Any]) -> tuple[str, float]:
        if not counter:
            return "-", 0.0
        key, writes = counter.most_common(1)[0]
        return "/".join(key[1:]) if isinstance(key, tuple) else str(key), writes / transfers

    balances = Counter({k: v for k, v in counting.writes.items() if k[0] == "balances"})
    return Shares(
        transfers=transfers,
        largest_item=top(counting.writes),
        largest_house_item=top(Counter({k: v for k, v in balances.items() if "HOUSE#" in k[1]})),
        largest_customer_item=top(
            Counter({k: v for k, v in balances.items() if k[1].startswith("ACCOUNT#")})
        ),
        largest_journal_partition=top(
            Counter({k: v for k, v in counting.partitions.items() if k[0] == "journal"})
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=2_000)
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS)
    parser.add_argument("--writers", type=int, default=100, help="concurrent writers")
    parser.add_argument("--atomic", action="store_true", help="real TransactWriteItems (slow)")
    args = parser.parse_args()
    if min(args.transfers, args.shards, args.writers) < 1:
        parser.error("--transfers, --shards and --writers must be positive")
    shares = measure(args.transfers, args.shards, writers=args.writers, atomic=args.atomic)
    print(
        f"{shares.transfers} transfers, demo mix, {args.shards} house shards, "
        f"{args.writers} writers"
    )
    for label, (key, share) in (
        ("any item", shares.largest_item),
        ("any house item", shares.largest_house_item),
        ("any customer item", shares.largest_customer_item),
        ("any journal partition", shares.largest_journal_partition),
    ):
        print(f"  largest share of transfers writing {label:22} {share:6.2%}  ({key})")


if __name__ == "__main__":
    main()
