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
from typing import Any

import boto3
from moto import mock_aws

from payment_local.modelled_dynamodb import ModelledDynamoDB, VirtualClock
from payment_posting_functions.domain.ledger import DynamoDBLedger
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import (
    Direction,
    PostingRequest,
    PostingSystem,
    TransientPostingError,
)
from payment_posting_functions.domain.posting_instructions import clearing_account

TABLE = "ledger-bench"
CURRENCY = "EUR"

# (client, table, sleep for back-offs) -> the ledger under test
LedgerFactory = Callable[[Any, str, Callable[[float], None]], PostingSystem]
LEDGERS: dict[str, LedgerFactory] = {
    "v1": lambda client, table, sleep: DynamoDBLedger(client, table, sleep=sleep),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ledger", choices=sorted(LEDGERS), default="v1")
    parser.add_argument("--workers", default="1,8,32,64", help="comma-separated K values")
    parser.add_argument("--postings", type=int, default=640, help="postings per K")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5.0, help="modelled round trip")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--output", type=Path, default=Path("reports") / "bench-ledger.json")
    try:
        args = parser.parse_args(argv)
        workers = [int(k) for k in args.workers.split(",")]
        if any(k < 1 for k in workers) or args.postings < 1 or args.accounts < 1:
            raise ValueError("workers, postings and accounts must be positive")
        if args.latency_ms < 0:
            raise ValueError("--latency-ms must not be negative")
    except ValueError as error:
        parser.error(str(error))
    rows = [
        run(
            LEDGERS[args.ledger],
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
                "latencyMs": args.latency_ms,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.output}")
    return 0


def run(
    factory: LedgerFactory,
    *,
    workers: int,
    postings: int,
    accounts: int,
    latency_s: float,
    seed: int,
) -> dict[str, Any]:
    """One K: fresh moto state, ``postings`` postings shared by ``workers`` threads."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
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
        clock = VirtualClock()
        modelled = ModelledDynamoDB(client, clock, latency_s=latency_s, jitter_s=latency_s * 0.4)
        ledger = factory(modelled, TABLE, clock.sleep)
        rng = random.Random(seed)  # noqa: S311 (a workload, not a secret)
        requests = [
            PostingRequest(
                transaction_id=f"bench-{seed}-{n:07d}",
                account_id=f"ACC-{rng.randrange(accounts):06d}",
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
            try:
                for request in share:
                    try:
                        ledger.post(request)
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
        "conflictsPerPosting": round(
            (stats.transaction_conflicts + stats.condition_failures) / postings, 3
        ),
        "retriesPerPosting": round(max(0, transactions - postings) / postings, 3),
        "gaveUp": len(gave_up),
        "hottestItem": hottest[1],
        "hottestItemShare": round(hottest_writes / postings, 3),
    }


def _print(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(
        f"ledger {args.ledger}: {args.postings} postings per K, {args.accounts} customer accounts "
        f"in {CURRENCY} against {clearing_account(CURRENCY)}, modelled round trip "
        f"{args.latency_ms:g} ms"
    )
    header = f"{'K':>4} {'postings/s':>11} {'conflicts/posting':>18} {'retries/posting':>16} "
    print(header + f"{'gave up':>8} {'hottest item share':>19}")
    for row in rows:
        print(
            f"{row['workers']:>4} {row['postingsPerSecond']:>11} {row['conflictsPerPosting']:>18} "
            f"{row['retriesPerPosting']:>16} {row['gaveUp']:>8} {row['hottestItemShare']:>19}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
