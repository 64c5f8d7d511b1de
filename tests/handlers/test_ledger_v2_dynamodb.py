"""What only the DynamoDB ledger v2 can get wrong: what it reads and writes per transfer,
its retries under contention, and detecting an entry changed in place. (Its semantics are
the reference's: tests/unit/test_ledger_v2_rules.py and test_ledger_v2_properties.py.)"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from botocore.exceptions import ClientError

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.house import clearing_account
from payment_posting_functions.domain.ledger_v2.model import Transfer, TransferKind
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import TransientPostingError

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CLEARING = clearing_account("EUR")


class Recording:
    """A DynamoDB client that counts calls, and can fail the next transactions."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self.transactions: list[list[dict[str, Any]]] = []
        self.fail_next: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**request: Any) -> Any:
            self.calls[name] += 1
            if name == "transact_write_items":
                self.transactions.append(request["TransactItems"])
                if self.fail_next:
                    raise _cancelled(self.fail_next.pop(0), len(request["TransactItems"]))
            return method(**request)

        return call


def _cancelled(reason: str, size: int) -> ClientError:
    if reason == "ThrottlingException":
        return ClientError({"Error": {"Code": reason, "Message": "slow down"}}, "TransactWrite")
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": reason}] + [{"Code": "None"}] * (size - 1),
        },
        "TransactWriteItems",
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def recording(dynamodb: Any) -> Recording:
    for definition in table_definitions("journal", "balances"):
        dynamodb.create_table(**definition)
    return Recording(dynamodb)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ledger(recording: Recording, sleeps: Sleeps) -> DynamoDBLedger:
    ticks = count()
    ledger = DynamoDBLedger(
        recording,
        "journal",
        "balances",
        clock=lambda: START + timedelta(milliseconds=next(ticks)),
        max_retries=3,
        sleep=sleeps,
    )
    ledger.open_account("acc-alice", "EUR", credit_limit=1_000)
    ledger.open_account(CLEARING, "EUR")
    return ledger


def purchase(transfer_id: str, amount: int = 100) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit_account_id="acc-alice",
        credit_account_id=CLEARING,
        amount=Money(amount=amount, currency="EUR"),
    )


def test_a_transfer_is_one_write_and_reads_no_balance(
    ledger: DynamoDBLedger, recording: Recording
) -> None:
    ledger.create_transfer(purchase("warm-up"))  # the house account is read once per process
    recording.calls.clear()
    ledger.create_transfer(purchase("t1"))
    assert recording.calls == Counter({"transact_write_items": 1})


def test_the_journal_is_only_ever_put_to_and_only_where_nothing_is(
    ledger: DynamoDBLedger, recording: Recording
) -> None:
    ledger.create_transfer(purchase("t1"))
    pending = purchase("p1").model_copy(update={"kind": TransferKind.PENDING})
    ledger.create_transfer(pending)
    ledger.create_transfer(
        Transfer(
            transfer_id="c1",
            kind=TransferKind.POST_PENDING,
            pending_id="p1",
            amount=Money(amount=120, currency="EUR"),
            tolerance=20,
        )
    )
    journal = [
        (operation, body)
        for items in recording.transactions
        for item in items
        for operation, body in item.items()
        if body["TableName"] == "journal"
    ]
    assert {operation for operation, _ in journal} == {"Put"}
    assert all(body["ConditionExpression"] == "attribute_not_exists(pk)" for _, body in journal)
    assert len(journal) == 3 + 3 + 6  # each transfer record + 2 entries; the excess too


def test_a_lost_race_is_retried_with_jitter_then_booked_once(
    ledger: DynamoDBLedger, recording: Recording, sleeps: Sleeps
) -> None:
    recording.fail_next = ["TransactionConflict", "ThrottlingError", "ThrottlingException"]
    ledger.create_transfer(purchase("t1"))
    assert len(sleeps) == 3
    assert all(0 <= slept <= 0.01 * 2**attempt for attempt, slept in enumerate(sleeps))
    assert ledger.balance("acc-alice").posted == -100
    assert len(ledger.statement("acc-alice").entries) == 1


def test_contention_that_outlasts_the_retries_is_transient_and_books_nothing(
    ledger: DynamoDBLedger, recording: Recording, sleeps: Sleeps
) -> None:
    recording.fail_next = ["TransactionConflict"] * 4
    with pytest.raises(TransientPostingError, match="gave up after 3 retries"):
        ledger.create_transfer(purchase("t1"))
    assert len(sleeps) == 3
    assert ledger.lookup_transfer("t1") is None
    assert ledger.balance("acc-alice").posted == 0


def test_an_entry_changed_in_place_is_detected(
    ledger: DynamoDBLedger, recording: Recording
) -> None:
    ledger.create_transfer(purchase("t1"))
    ledger.create_transfer(purchase("t2"))
    assert ledger.tampered("acc-alice") == []
    key = {"pk": {"S": "ACCOUNT#acc-alice"}}
    item = recording.query(
        TableName="journal",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": key["pk"]},
    )["Items"][0]
    # Someone with more rights than the posting role rewrites the amount.
    item["record"]["S"] = item["record"]["S"].replace('"posted":-100', '"posted":-1')
    recording.put_item(TableName="journal", Item=item)
    assert ledger.tampered("acc-alice") == [item["sk"]["S"]]


def test_house_legs_spread_over_the_shards_by_hash_without_leases(recording: Recording) -> None:
    # moto copies its tables for every transaction, so a few shards and few transfers.
    ledger = DynamoDBLedger(
        recording, "journal", "balances", house_shards=8, house_shard_leases=False
    )
    ledger.open_account("acc-alice", "EUR", credit_limit=1_000)
    ledger.open_account(CLEARING, "EUR")
    for number in range(80):
        ledger.create_transfer(purchase(f"t{number}", amount=1))
    house_items: Counter[str] = Counter(
        body["Key"]["pk"]["S"] + body["Key"]["sk"]["S"]
        for items in recording.transactions
        for item in items
        for operation, body in item.items()
        if operation == "Update" and body["Key"]["pk"]["S"].startswith("HOUSE#")
    )
    assert len(house_items) == 8
    assert max(house_items.values()) <= 20  # 80/8 = 10 on average
    assert ledger.balance(CLEARING).posted == 80
    assert len(ledger.statement(CLEARING, limit=1_000).entries) == 80


def test_one_writer_with_a_lease_keeps_its_house_legs_on_its_shard(recording: Recording) -> None:
    ledger = DynamoDBLedger(recording, "journal", "balances", house_shards=8)
    ledger.open_account("acc-alice", "EUR", credit_limit=1_000)
    for number in range(10):
        ledger.create_transfer(purchase(f"t{number}", amount=1))
    house_items = {
        body["Key"]["sk"]["S"]
        for items in recording.transactions
        for item in items
        for operation, body in item.items()
        if operation == "Update" and body["Key"]["pk"]["S"].startswith("HOUSE#")
    }
    assert ledger.house_lease is not None
    assert house_items == {f"SHARD#{ledger.house_lease.shard:02d}"}
    # Entries stay on the hash shards: a house statement reads them all the same.
    assert ledger.balance(CLEARING).posted == 10
    assert len(ledger.statement(CLEARING, limit=100).entries) == 10
