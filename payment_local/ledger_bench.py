"""``make bench-ledger``: K concurrent posting workers against the ledger, on moto with
DynamoDB's round trip and transaction conflicts modelled in virtual time
(``payment_local/modelled_dynamodb.py``): postings per second are per virtual second, so they
measure the ledger's design under K clients, not moto's speed on this machine.

For each K it prints postings per second, conflicts and retries per posting, postings given up
(the queue would redeliver them), and the largest share of postings that wrote any one item.
The account mix: ``--accounts`` customer accounts in one currency, picked uniformly, each
posting debiting one of them against the currency's clearing account (as every card posting
does). Not a test: the figures depend on the machine; read them.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import boto3
from moto import mock_aws

from payment_local import moto_internals
from payment_local.ledger_v1 import DynamoDBLedger
from payment_local.modelled_dynamodb import ModelledDynamoDB, VirtualClock
from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger as LedgerV2Adapter
from payment_posting_functions.domain.ledger_v2.dynamodb import account_item, table_definitions
from payment_posting_functions.domain.ledger_v2.house import DEFAULT_SHARDS
from payment_posting_functions.domain.ledger_v2.house import (
    clearing_account as clearing_account_v2,
)
from payment_posting_functions.domain.ledger_v2.model import Transfer
from payment_posting_functions.domain.ledger_v2.reference import new_account
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import (
    Direction,
    PostingRequest,
    TransientPostingError,
)
from payment_posting_functions.domain.posting_instructions import clearing_account

TABLE = "ledger-bench"
JOURNAL = "ledger-bench-journal"
BALANCES = "ledger-bench-balances"
CURRENCY = "EUR"
# Large enough that no bench posting is refused for funds: the bench measures contention.
CREDIT_LIMIT = 10**11

Post = Callable[[PostingRequest], object]


class BenchLedger(Protocol):
    def setup(self, client: Any, accounts: list[str]) -> None:
        """Create the tables (and open the accounts) on the plain client, before the clock."""

    def poster(self, client: Any, sleep: Callable[[float], None]) -> Post:
        """What one posting calls, on the modelled client."""


class LedgerV1:
    """Ledger v1 (payment_local/ledger_v1.py): one table, the clearing balance read then written."""

    def setup(self, client: Any, accounts: list[str]) -> None:
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )

    def poster(self, client: Any, sleep: Callable[[float], None]) -> Post:
        return DynamoDBLedger(client, TABLE, sleep=sleep).post


class LedgerV2:
    """Ledger v2 (domain/ledger_v2): accounts opened first, house legs over ``shards`` items,
    each worker on a shard it leases (``leases``) or on each transfer's hash shard."""

    def __init__(self, shards: int = DEFAULT_SHARDS, *, leases: bool = True) -> None:
        self.shards = shards
        self.leases = leases

    def setup(self, client: Any, accounts: list[str]) -> None:
        for definition in table_definitions(JOURNAL, BALANCES):
            client.create_table(**definition)
        ledger = LedgerV2Adapter(client, JOURNAL, BALANCES)
        ledger.open_account(clearing_account_v2(CURRENCY), CURRENCY)
        # A bulk load of the items open_account writes (moto's UpdateItem is slow; the
        # set-up is not what is measured).
        items = [account_item(new_account(a, CURRENCY, CREDIT_LIMIT)) for a in accounts]
        for start in range(0, len(items), 25):
            client.batch_write_item(
                RequestItems={
                    BALANCES: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
                }
            )

    def poster(self, client: Any, sleep: Callable[[float], None]) -> Post:
        ledger = LedgerV2Adapter(
            client,
            JOURNAL,
            BALANCES,
            sleep=sleep,
            house_shards=self.shards,
            house_shard_leases=self.leases,
        )

        def post(request: PostingRequest) -> object:
            return ledger.create_transfer(
                Transfer(
                    transfer_id=request.transaction_id,
                    debit_account_id=request.account_id,
                    credit_account_id=request.counter_account_id,
                    amount=request.amount,
                )
            )

        return post


LEDGERS: dict[str, BenchLedger] = {"v1": LedgerV1(), "v2": LedgerV2()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ledger", choices=sorted(LEDGERS), default="v1")
    parser.add_argument("--workers", default="1,8,32,64", help="comma-separated K values")
    parser.add_argument(
        "--postings", type=int, default=1280, help="postings per K (20 a worker at K = 64)"
    )
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5.0, help="modelled round trip")
    parser.add_argument(
        "--shards", type=int, default=DEFAULT_SHARDS, help="house shards (ledger v2)"
    )
    parser.add_argument(
        "--house-shard",
        choices=("lease", "hash"),
        default="lease",
        help="ledger v2: each worker on a leased shard, or each transfer on its hash's",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--output", type=Path, default=Path("reports") / "bench-ledger.json")
    try:
        args = parser.parse_args(argv)
        workers = [int(k) for k in args.workers.split(",")]
        if min(*workers, args.postings, args.accounts, args.shards) < 1:
            raise ValueError("workers, postings, accounts and shards must be positive")
        if args.latency_ms < 0:
            raise ValueError("--latency-ms must not be negative")
    except ValueError as error:
        parser.error(str(error))
    ledger = (
        LedgerV2(args.shards, leases=args.house_shard == "lease")
        if args.ledger == "v2"
        else LEDGERS[args.ledger]
    )
    rows = [
        run(
            ledger,
            workers=k,
            postings=args.postings,
            accounts=args.accounts,
            latency_s=args.latency_ms / 1000,
            seed=args.seed,
        )
        for k in workers
    ]
    _print(args, rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "ledger": args.ledger,
                "machine": platform.platform(),
                "accounts": args.accounts,
                "houseShards": args.shards if args.ledger == "v2" else None,
                "houseShardChoice": args.house_shard if args.ledger == "v2" else None,
                "latencyMs": args.latency_ms,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.output}")
    return 0


def run(
    ledger: BenchLedger,
    *,
    workers: int,
    postings: int,
    accounts: int,
    latency_s: float,
    seed: int,
) -> dict[str, Any]:
    """One K: fresh moto state, ``postings`` postings shared by ``workers`` threads."""
    # moto's TransactWriteItems copies every table per call (quadratic in a long run); the
    # local runtime's patch keeps an undo log instead, with the same results.
    moto_internals.apply_patches()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        customers = [f"ACC-{n:06d}" for n in range(accounts)]
        ledger.setup(client, customers)
        clock = VirtualClock()
        modelled = ModelledDynamoDB(client, clock, latency_s=latency_s, jitter_s=latency_s * 0.4)
        rng = random.Random(seed)  # noqa: S311 (a workload, not a secret)
        requests = [
            PostingRequest(
                transaction_id=f"bench-{seed}-{n:07d}",
                account_id=customers[rng.randrange(accounts)],
                counter_account_id=clearing_account(CURRENCY),
                amount=Money(amount=rng.randint(100, 50_000), currency=CURRENCY),
                direction=Direction.DEBIT,
            )
            for n in range(postings)
        ]
        gave_up: list[str] = []
        lock = threading.Lock()
        shares = [requests[i::workers] for i in range(workers)]

        def work(worker: int, share: list[PostingRequest]) -> None:
            clock.bind(worker)
            # One ledger per worker, as each Lambda execution environment has its own.
            post = ledger.poster(modelled, clock.sleep)
            try:
                for request in share:
                    try:
                        post(request)
                    except TransientPostingError:
                        with lock:
                            gave_up.append(request.transaction_id)
            finally:
                clock.leave()

        for worker in range(workers):
            clock.join(worker)
        threads = [
            threading.Thread(target=work, args=(worker, share))
            for worker, share in enumerate(shares)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        elapsed = clock.elapsed()

    stats = modelled.stats
    transactions = stats.calls["transact_write_items"]
    hottest, hottest_writes = stats.writes_per_item.most_common(1)[0]
    return {
        "workers": workers,
        "postings": postings,
        "virtualSeconds": round(elapsed, 3),
        "wallSeconds": round(wall, 1),
        "postingsPerSecond": round((postings - len(gave_up)) / elapsed, 1),
        # Postings' own transactions cancelled (a conflict, or a condition a race broke).
        "conflictsPerPosting": round(stats.refused_by_call["transact_write_items"] / postings, 3),
        # Lease claims and renewals (ledger v2 with leases): per worker, not per posting.
        "leaseWritesPerWorker": round(stats.calls["update_item"] / workers, 2),
        "leaseClaimsRefusedPerWorker": round(stats.refused_by_call["update_item"] / workers, 2),
        "retriesPerPosting": round(max(0, transactions - postings) / postings, 3),
        "gaveUp": len(gave_up),
        "hottestItem": hottest[1],
        "hottestItemShare": round(hottest_writes / postings, 3),
        # What DynamoDB limits per item (1,000 write units a second): the hottest item's rate.
        "hottestItemWritesPerSecond": round(hottest_writes / elapsed, 1),
    }


def _print(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(
        f"ledger {args.ledger}: {args.postings} postings per K, {args.accounts} customer accounts "
        f"in {CURRENCY} against {clearing_account(CURRENCY)}, modelled round trip "
        f"{args.latency_ms:g} ms"
        + (f", {args.shards} house shards ({args.house_shard})" if args.ledger == "v2" else "")
    )
    header = f"{'K':>4} {'postings/s':>11} {'conflicts/posting':>18} {'retries/posting':>16} "
    print(
        header + f"{'gave up':>8} {'hottest item share':>19} {'its writes/s':>13} "
        f"{'lease writes/worker':>20}"
    )
    for row in rows:
        print(
            f"{row['workers']:>4} {row['postingsPerSecond']:>11} {row['conflictsPerPosting']:>18} "
            f"{row['retriesPerPosting']:>16} {row['gaveUp']:>8} {row['hottestItemShare']:>19} "
            f"{row['hottestItemWritesPerSecond']:>13} {row['leaseWritesPerWorker']:>20}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
