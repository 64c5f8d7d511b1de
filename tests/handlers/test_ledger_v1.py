"""The DynamoDB ledger on moto: atomic postings, lost races, refusals, holds, redeliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from payment_local.ledger_v1 import (
    Balance,
    DynamoDBLedger,
    InMemoryLedger,
    posting_id,
)
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import (
    Direction,
    PermanentPostingError,
    PostingRequest,
    PostingStatus,
    TransientPostingError,
)

TABLE = "ledger"
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ALICE = "acc-alice"
SETTLEMENT = "settlement-eur"


def ticking_clock() -> Callable[[], datetime]:
    seconds = count()
    return lambda: START + timedelta(seconds=next(seconds))


class Sleeps(list[float]):
    """Records the backoff instead of sleeping it."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def table(dynamodb: Any) -> str:
    dynamodb.create_table(
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
    return TABLE


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ledger(dynamodb: Any, table: str, sleeps: Sleeps) -> DynamoDBLedger:
    return DynamoDBLedger(dynamodb, table, clock=ticking_clock(), sleep=sleeps)


def request(number: int = 1, **overrides: Any) -> PostingRequest:
    fields: dict[str, Any] = {
        "transaction_id": f"tx-{number:06d}",
        "account_id": ALICE,
        "counter_account_id": SETTLEMENT,
        "amount": Money(amount=1_000, currency="EUR"),
        "direction": Direction.DEBIT,
    }
    return PostingRequest(**(fields | overrides))


def eur(amount: int) -> Money:
    return Money(amount=amount, currency="EUR")


def all_items(dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def bump(dynamodb: Any, account_id: str, posted: int = 0) -> None:
    """Another writer's balance change, landing between the ledger's read and its write."""
    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": "BALANCE#EUR"}},
        UpdateExpression=(
            "SET accountId = :a, currency = :c, posted = if_not_exists(posted, :zero) + :p,"
            " available = if_not_exists(available, :zero) + :p,"
            " version = if_not_exists(version, :zero) + :one"
        ),
        ExpressionAttributeValues={
            ":a": {"S": account_id},
            ":c": {"S": "EUR"},
            ":p": {"N": str(posted)},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        },
    )


def interfere(
    monkeypatch: pytest.MonkeyPatch,
    dynamodb: Any,
    operation: str,
    before: Callable[[int], None],
) -> list[int]:
    """Run ``before(call number)`` ahead of each call of ``operation``; returns the calls."""
    original = getattr(dynamodb, operation)
    calls: list[int] = []

    def wrapper(**kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        # The other writer goes straight to the table, not through this wrapper.
        monkeypatch.setattr(dynamodb, operation, original)
        try:
            before(len(calls))
        finally:
            monkeypatch.setattr(dynamodb, operation, wrapper)
        return original(**kwargs)

    monkeypatch.setattr(dynamodb, operation, wrapper)
    return calls


def fail_with(monkeypatch: pytest.MonkeyPatch, dynamodb: Any, error: Exception) -> None:
    def wrapper(**_: Any) -> Any:
        raise error

    monkeypatch.setattr(dynamodb, "transact_write_items", wrapper)


def test_a_posting_writes_the_record_both_legs_and_both_balances(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    result = ledger.post(request())

    assert result.status is PostingStatus.POSTED
    assert result.posting_id == posting_id("tx-000001")
    keys = [(item["pk"]["S"], item["sk"]["S"]) for item in all_items(dynamodb)]
    assert keys == [
        ("ACCOUNT#acc-alice", "BALANCE#EUR"),
        ("ACCOUNT#acc-alice", "ENTRY#2026-11-24T09:00:00.000000+00:00#tx-000001"),
        ("ACCOUNT#settlement-eur", "BALANCE#EUR"),
        ("ACCOUNT#settlement-eur", "ENTRY#2026-11-24T09:00:00.000000+00:00#tx-000001"),
        ("POSTING#tx-000001", "POSTING"),
    ]
    record = ledger.posting("tx-000001")
    assert record is not None
    assert (record.amount, record.currency, record.direction) == (1_000, "EUR", Direction.DEBIT)
    assert record.posting_id == result.posting_id
    assert record.posted_at == START
    assert [(e.amount, e.counter_account_id) for e in ledger.entries(ALICE)] == [
        (-1_000, SETTLEMENT)
    ]
    assert [(e.amount, e.counter_account_id) for e in ledger.entries(SETTLEMENT)] == [
        (1_000, ALICE)
    ]
    assert ledger.balance(ALICE, "EUR") == Balance(
        account_id=ALICE, currency="EUR", posted=-1_000, available=-1_000, version=1
    )
    assert ledger.balance(SETTLEMENT, "EUR").posted == 1_000
    assert ledger.trial_balance() == {"EUR": 0}
    assert ledger.posting("tx-unknown") is None


def test_a_credit_is_the_mirror_of_a_debit(ledger: DynamoDBLedger) -> None:
    ledger.post(request(1, direction=Direction.DEBIT, amount=eur(700)))
    ledger.post(request(2, direction=Direction.CREDIT, amount=eur(200)))
    assert [e.amount for e in ledger.entries(ALICE)] == [-700, 200]
    assert [e.amount for e in ledger.entries(SETTLEMENT)] == [700, -200]
    assert ledger.balance(ALICE, "EUR").posted == -500
    assert ledger.balance(ALICE, "EUR").version == 2


def test_the_largest_amount_is_stored_as_an_exact_integer(
    ledger: DynamoDBLedger, dynamodb: Any
) -> None:
    largest = Money(amount=999_999_999_999, currency="BHD")
    ledger.post(request(amount=largest, direction=Direction.CREDIT))
    numbers = {
        item[name]["N"]
        for item in all_items(dynamodb)
        for name in ("amount", "posted", "available")
        if name in item
    }
    assert numbers == {"999999999999", "-999999999999"}
    assert ledger.trial_balance() == {"BHD": 0}


def test_a_lost_race_is_retried_on_fresh_balances_and_applied_once(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    ledger.post(request(1))
    # The first attempt of the next posting loses to a writer that adds 500 to Alice.
    calls = interfere(
        monkeypatch,
        dynamodb,
        "transact_write_items",
        lambda call: bump(dynamodb, ALICE, posted=500) if call == 1 else None,
    )

    result = ledger.post(request(2))

    assert result.status is PostingStatus.POSTED
    assert calls == [1, 2]
    assert len(sleeps) == 1
    alice = ledger.balance(ALICE, "EUR")
    assert (alice.posted, alice.available, alice.version) == (-1_000 + 500 - 1_000, -1_500, 3)
    assert ledger.balance(SETTLEMENT, "EUR").posted == 2_000
    assert [e.transaction_id for e in ledger.entries(ALICE)] == ["tx-000001", "tx-000002"]
    assert len(ledger.scan_entries()) == 4


def test_a_balance_created_concurrently_is_a_lost_race_too(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither balance exists when read; another writer creates the settlement one first.
    interfere(
        monkeypatch,
        dynamodb,
        "transact_write_items",
        lambda call: bump(dynamodb, SETTLEMENT, posted=-300) if call == 1 else None,
    )

    assert ledger.post(request()).status is PostingStatus.POSTED
    settlement = ledger.balance(SETTLEMENT, "EUR")
    assert (settlement.posted, settlement.version) == (700, 2)


def test_after_the_last_retry_it_fails_transiently_and_writes_nothing(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    ledger = DynamoDBLedger(
        dynamodb, table, clock=ticking_clock(), max_conflict_retries=3, sleep=sleeps
    )
    ledger.post(request(1))
    calls = interfere(
        monkeypatch, dynamodb, "transact_write_items", lambda _: bump(dynamodb, SETTLEMENT)
    )

    with pytest.raises(TransientPostingError, match="gave up after 3 retries"):
        ledger.post(request(2))

    assert calls == [1, 2, 3, 4]
    # Full jitter under a doubling ceiling: 10 ms, 20 ms, 40 ms.
    assert len(sleeps) == 3
    ceilings = (0.01, 0.02, 0.04)
    assert all(0 <= slept <= top for slept, top in zip(sleeps, ceilings, strict=True))
    assert ledger.posting("tx-000002") is None
    assert [e.transaction_id for e in ledger.scan_entries()] == ["tx-000001", "tx-000001"]
    assert ledger.balance(ALICE, "EUR").posted == -1_000
    settlement = ledger.balance(SETTLEMENT, "EUR")
    assert (settlement.posted, settlement.version) == (1_000, 1 + 4)  # only the bumps


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amount": Money(amount=0, currency="EUR")}, "posting of 0 EUR"),
        ({"counter_account_id": ALICE}, "acc-alice is on both legs"),
    ],
)
def test_postings_that_move_no_money_are_refused_for_good(
    ledger: DynamoDBLedger, dynamodb: Any, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(PermanentPostingError, match=message):
        ledger.post(request(**overrides))
    assert all_items(dynamodb) == []


def test_hold_and_release_move_available_but_not_posted(ledger: DynamoDBLedger) -> None:
    ledger.post(request(direction=Direction.CREDIT, amount=eur(5_000)))

    held = ledger.hold(ALICE, eur(1_200))
    assert (held.posted, held.available, held.version) == (5_000, 3_800, 2)
    assert ledger.balance(ALICE, "EUR") == held
    released = ledger.release(ALICE, eur(1_200))
    assert (released.posted, released.available, released.version) == (5_000, 5_000, 3)
    assert ledger.balance(ALICE, "EUR") == released

    fresh = ledger.hold("acc-new", eur(50))
    assert (fresh.posted, fresh.available, fresh.version) == (0, -50, 1)
    assert ledger.trial_balance() == {"EUR": 0}  # holds are not postings
    assert len(ledger.scan_entries()) == 2
    with pytest.raises(PermanentPostingError, match="hold or release of 0 EUR"):
        ledger.release(ALICE, eur(0))


def test_a_hold_that_loses_a_race_is_retried(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    ledger.post(request(direction=Direction.CREDIT, amount=eur(5_000)))
    calls = interfere(
        monkeypatch,
        dynamodb,
        "update_item",
        lambda call: bump(dynamodb, ALICE, posted=100) if call == 1 else None,
    )

    held = ledger.hold(ALICE, eur(1_000))

    assert calls == [1, 2]
    assert len(sleeps) == 1
    assert (held.posted, held.available, held.version) == (5_100, 4_100, 3)
    assert ledger.balance(ALICE, "EUR") == held


def test_a_hold_that_keeps_losing_fails_transiently(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = DynamoDBLedger(dynamodb, table, max_conflict_retries=2, sleep=lambda _: None)
    ledger.hold(ALICE, eur(10))
    calls = interfere(monkeypatch, dynamodb, "update_item", lambda _: bump(dynamodb, ALICE))

    with pytest.raises(TransientPostingError, match="account acc-alice"):
        ledger.hold(ALICE, eur(10))

    assert calls == [1, 2, 3]
    balance = ledger.balance(ALICE, "EUR")
    assert (balance.available, balance.version) == (-10, 1 + 3)  # only the bumps


def test_entries_come_back_in_posting_order_across_pages(
    dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timestamps out of call order, with ties broken by transaction id.
    stamps = iter(START + timedelta(seconds=s) for s in (5, 1, 3, 1, 4))
    ledger = DynamoDBLedger(dynamodb, table, clock=lambda: next(stamps))
    for number in (1, 2, 3, 4, 5):
        ledger.post(request(number, amount=eur(number)))
    for operation in ("query", "scan"):
        original = getattr(dynamodb, operation)
        monkeypatch.setattr(
            dynamodb,
            operation,
            lambda _original=original, **kwargs: _original(Limit=2, **kwargs),
        )

    expected = ["tx-000002", "tx-000004", "tx-000003", "tx-000005", "tx-000001"]
    assert [e.transaction_id for e in ledger.entries(ALICE)] == expected
    assert [e.transaction_id for e in ledger.entries(SETTLEMENT)] == expected
    assert [e.posted_at.second for e in ledger.entries(ALICE)] == [1, 1, 3, 4, 5]
    assert len(ledger.scan_entries()) == 10
    assert len(ledger.balances()) == 2
    assert ledger.trial_balance() == {"EUR": 0}


def test_a_redelivery_after_a_crash_posts_nothing(
    ledger: DynamoDBLedger, dynamodb: Any, table: str
) -> None:
    first = ledger.post(request(1))
    ledger.post(request(2, amount=eur(5)))
    before = all_items(dynamodb)

    # A new container after the crash: a fresh ledger, its own clock, same transaction.
    restarted = DynamoDBLedger(dynamodb, table)
    repeat = restarted.post(request(1))

    assert repeat.status is PostingStatus.ALREADY_POSTED
    assert repeat.posting_id == first.posting_id
    assert all_items(dynamodb) == before


def test_a_redelivery_that_also_races_is_still_a_repeat(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.post(request(1))
    # Both the posting record and a balance fail their conditions: the record decides.
    calls = interfere(
        monkeypatch, dynamodb, "transact_write_items", lambda _: bump(dynamodb, ALICE)
    )

    assert ledger.post(request(1)).status is PostingStatus.ALREADY_POSTED
    assert calls == [1]
    assert ledger.balance(ALICE, "EUR").posted == -1_000


def test_a_concurrent_delivery_of_the_same_posting_ends_as_a_repeat(
    ledger: DynamoDBLedger, dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other delivery holds the posting record mid-transaction, then commits.
    original = dynamodb.transact_write_items
    calls: list[int] = []

    def conflicted_once(**kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        if len(calls) > 1:
            return original(**kwargs)
        monkeypatch.setattr(dynamodb, "transact_write_items", original)
        DynamoDBLedger(dynamodb, table).post(request())
        monkeypatch.setattr(dynamodb, "transact_write_items", conflicted_once)
        reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * 4
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                "CancellationReasons": reasons,
            },
            "TransactWriteItems",
        )

    monkeypatch.setattr(dynamodb, "transact_write_items", conflicted_once)

    assert ledger.post(request()).status is PostingStatus.ALREADY_POSTED
    assert calls == [1, 2]
    assert ledger.balance(ALICE, "EUR").posted == -1_000
    assert len(ledger.scan_entries()) == 2


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalServerError",
        "TransactionInProgressException",
    ],
)
def test_throttling_and_outages_are_transient(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "try later"}}, "TransactWriteItems")
    fail_with(monkeypatch, dynamodb, error)
    with pytest.raises(TransientPostingError, match=code):
        ledger.post(request())


def test_a_cancellation_for_throttling_is_transient(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reasons = [{"Code": "None"}] * 3 + [{"Code": "ThrottlingError"}, {"Code": "None"}]
    error = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": reasons,
        },
        "TransactWriteItems",
    )
    fail_with(monkeypatch, dynamodb, error)
    with pytest.raises(TransientPostingError, match="ThrottlingError"):
        ledger.post(request())


def test_an_unreachable_endpoint_is_transient(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_with(monkeypatch, dynamodb, EndpointConnectionError(endpoint_url="https://dynamodb"))
    with pytest.raises(TransientPostingError, match="unreachable"):
        ledger.post(request())


def test_a_bug_is_not_disguised_as_a_posting_error(
    ledger: DynamoDBLedger, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "bad expression"}},
        "TransactWriteItems",
    )
    fail_with(monkeypatch, dynamodb, error)
    with pytest.raises(ClientError, match="bad expression"):
        ledger.post(request())


def test_same_postings_give_the_same_books_as_the_reference(ledger: DynamoDBLedger) -> None:
    reference = InMemoryLedger(clock=ticking_clock())
    postings = [
        request(1),
        request(2, direction=Direction.CREDIT, amount=eur(250)),
        request(3, account_id="acc-bob", amount=Money(amount=7, currency="JPY")),
        request(1),
    ]
    for posting in postings:
        assert ledger.post(posting) == reference.post(posting)
    ledger.hold("acc-bob", eur(40))
    reference.hold("acc-bob", eur(40))
    assert ledger.balances() == reference.balances()
    assert ledger.scan_entries() == reference.scan_entries()
    assert ledger.posting("tx-000002") == reference.posting("tx-000002")
