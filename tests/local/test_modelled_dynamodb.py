"""The virtual-time DynamoDB model behind ``make bench-ledger``: overlapping transactions on an
item conflict as on DynamoDB, and K workers overlap in virtual time whatever moto's speed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from payment_local.ledger_bench import LedgerV1, LedgerV2, main, run
from payment_local.modelled_dynamodb import ModelledDynamoDB, VirtualClock

TABLE = "t"
LATENCY = 0.005


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def _add(pk: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def _workers(clock: VirtualClock, jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def work(worker: int, job: Callable[[], None]) -> None:
        clock.bind(worker)
        try:
            job()
        except Exception as error:
            errors.append(error)
        finally:
            clock.leave()

    for worker in range(len(jobs)):
        clock.join(worker)
    threads = [threading.Thread(target=work, args=(n, job)) for n, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_transactions_on_one_item_at_once_conflict(client: Any) -> None:
    clock = VirtualClock()
    modelled = ModelledDynamoDB(client, clock, latency_s=LATENCY)
    jobs = [lambda: modelled.transact_write_items(TransactItems=[_add("hot")])] * 2
    errors = _workers(clock, jobs)
    assert len(errors) == 1
    assert isinstance(errors[0], ClientError)
    assert errors[0].response["CancellationReasons"] == [{"Code": "TransactionConflict"}]
    assert modelled.stats.transaction_conflicts == 1


def test_one_after_the_other_they_do_not(client: Any) -> None:
    clock = VirtualClock()
    modelled = ModelledDynamoDB(client, clock, latency_s=LATENCY)

    def twice() -> None:
        modelled.transact_write_items(TransactItems=[_add("hot")])
        modelled.transact_write_items(TransactItems=[_add("hot")])

    assert _workers(clock, [twice]) == []
    assert modelled.stats.writes_per_item[(TABLE, repr([("pk", "{'S': 'hot'}")]))] == 2
    assert clock.elapsed() == pytest.approx(2 * LATENCY)


def test_workers_on_different_items_overlap_in_virtual_time(client: Any) -> None:
    clock = VirtualClock()
    modelled = ModelledDynamoDB(client, clock, latency_s=LATENCY)

    def ten_writes(worker: int) -> Callable[[], None]:
        def job() -> None:
            for n in range(10):
                modelled.transact_write_items(TransactItems=[_add(f"w{worker}-{n}")])

        return job

    assert _workers(clock, [ten_writes(w) for w in range(8)]) == []
    # 80 writes by 8 workers take the time of 10, not 80.
    assert clock.elapsed() == pytest.approx(10 * LATENCY)
    assert modelled.stats.transaction_conflicts == 0


def test_a_back_off_moves_the_virtual_clock_not_the_wall_clock(client: Any) -> None:
    clock = VirtualClock()
    assert _workers(clock, [lambda: clock.sleep(30.0)]) == []
    assert clock.elapsed() == pytest.approx(30.0)


def test_the_bench_shows_the_v1_hot_item_and_v2_without_one() -> None:
    v1 = run(LedgerV1(), workers=4, postings=24, accounts=50, latency_s=LATENCY, seed=3)
    v2 = run(LedgerV2(shards=64), workers=4, postings=24, accounts=50, latency_s=LATENCY, seed=3)
    assert v1["hottestItemShare"] > 0.5  # the clearing balance, written by (nearly) every posting
    assert v1["conflictsPerPosting"] > 0
    assert v2["gaveUp"] == 0
    # Each of the 4 workers on a house shard of its own: at most a quarter of the postings.
    assert v2["hottestItemShare"] <= 0.25
    assert v2["postingsPerSecond"] > v1["postingsPerSecond"]


def test_a_bad_argument_is_a_message_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--workers", "0"])
    assert exit_info.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_leased_house_shards_remove_the_house_conflicts_that_hashing_has() -> None:
    # Many accounts, so that customer accounts rarely meet: what is left is the house items.
    def bench(leases: bool) -> dict[str, Any]:
        return run(
            LedgerV2(shards=16, leases=leases),
            workers=8,
            postings=64,
            accounts=3000,
            latency_s=LATENCY,
            seed=5,
        )

    leased, hashed = bench(leases=True), bench(leases=False)
    assert hashed["conflictsPerPosting"] > 0.02  # 8 writers over 16 shards meet
    assert leased["conflictsPerPosting"] == 0
    assert leased["leaseWritesPerWorker"] >= 1  # each claimed its shard
    assert leased["postingsPerSecond"] > hashed["postingsPerSecond"]
