"""House shard leases: concurrent writers on distinct shards, and never a posting lost to one."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.house import shard_of
from payment_posting_functions.domain.ledger_v2.house_lease import HouseShardLease, lease_key
from payment_posting_functions.domain.ledger_v2.model import Transfer
from payment_posting_functions.domain.money import Money


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        for definition in table_definitions("journal", "balances"):
            dynamodb.create_table(**definition)
        yield dynamodb


def lease(client: Any, wall: Wall, shards: int = 8, seed: int = 1) -> HouseShardLease:
    return HouseShardLease(
        client, "balances", shards, clock=wall, lease_seconds=60, rng=random.Random(seed)
    )


def test_writers_hold_distinct_shards_and_keep_them(client: Any) -> None:
    wall = Wall()
    writers = [lease(client, wall, seed=n) for n in range(6)]
    shards = [w.shard_for(f"t-{n}") for n, w in enumerate(writers)]
    assert len(set(shards)) == 6
    # The same writer stays on its shard, whatever the transfer, and claims nothing more.
    claims = [w.claims for w in writers]
    for n, writer in enumerate(writers):
        assert {writer.shard_for(f"other-{n}-{k}") for k in range(5)} == {shards[n]}
    assert [w.claims for w in writers] == claims


def test_a_lease_is_renewed_after_half_its_time_by_its_holder(client: Any) -> None:
    wall = Wall()
    writer = lease(client, wall)
    shard = writer.shard_for("t-1")
    wall.now += 31
    assert writer.shard_for("t-2") == shard
    item = client.get_item(TableName="balances", Key=lease_key(shard))["Item"]
    assert float(item["leaseUntil"]["N"]) == wall.now + 60
    assert item["owner"]["S"] == writer.owner


def test_an_expired_lease_goes_to_another_writer_and_its_holder_moves_on(client: Any) -> None:
    wall = Wall()
    first = lease(client, wall, shards=2, seed=3)
    taken = first.shard_for("t-1")
    wall.now += 120  # the holder was frozen past its lease
    second = lease(client, wall, shards=2, seed=3)  # tries the same shard first
    assert second.shard_for("t-2") == taken
    # The first holder's renewal is refused: it claims the other shard.
    assert first.shard_for("t-3") == 1 - taken


def test_with_every_shard_taken_a_writer_hashes_and_waits_to_claim_again(client: Any) -> None:
    wall = Wall()
    holders = [lease(client, wall, shards=2, seed=n) for n in range(2)]
    assert {h.shard_for("x") for h in holders} == {0, 1}
    late = lease(client, wall, shards=2, seed=9)
    assert late.shard_for("t-42") == shard_of("t-42", 2)
    claims = late.claims
    assert late.shard_for("t-43") == shard_of("t-43", 2)
    assert late.claims == claims  # no claim on every posting while all are taken
    wall.now += 31
    late.shard_for("t-44")
    assert late.claims > claims  # and it tries again later


def test_writers_on_leased_shards_keep_the_house_balance_exact(client: Any) -> None:
    ledgers = [DynamoDBLedger(client, "journal", "balances", house_shards=4) for _ in range(3)]
    ledgers[0].open_account("acc-1", "EUR", credit_limit=10_000)
    for n in range(12):
        ledgers[n % 3].create_transfer(
            Transfer(
                transfer_id=f"t-{n}",
                debit_account_id="acc-1",
                credit_account_id="CLEARING-EUR",
                amount=Money(amount=10 + n, currency="EUR"),
            )
        )
    leased = {ledger.house_lease.shard for ledger in ledgers if ledger.house_lease}
    assert len(leased) == 3
    total = sum(10 + n for n in range(12))
    assert ledgers[1].balance("CLEARING-EUR").posted == total
    assert ledgers[2].balance("acc-1").posted == -total
    assert ledgers[0].trial_balance("EUR").posted == 0
