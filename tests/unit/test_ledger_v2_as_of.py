"""Balances and the trial balance as of a point in time, exact while postings go on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.model import Balance, Transfer
from payment_posting_functions.domain.money import Money

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ALICE, BOB = "acc-alice", "acc-bob"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock: Clock) -> Iterator[DynamoDBLedger]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        for definition in table_definitions("journal", "balances"):
            client.create_table(**definition)
        books = DynamoDBLedger(client, "journal", "balances", clock=clock, house_shards=4)
        books.open_account(ALICE, "EUR", credit_limit=10_000)
        books.open_account(BOB, "EUR", credit_limit=10_000)
        yield books


def pay(ledger: DynamoDBLedger, transfer_id: str, debit: str, amount: int) -> None:
    ledger.create_transfer(
        Transfer(
            transfer_id=transfer_id,
            debit_account_id=debit,
            credit_account_id="CLEARING-EUR",
            amount=Money(amount=amount, currency="EUR"),
        )
    )


def test_a_balance_as_of_a_cut_off_leaves_out_what_was_booked_after(
    ledger: DynamoDBLedger, clock: Clock
) -> None:
    pay(ledger, "t1", ALICE, 100)
    pay(ledger, "t2", BOB, 40)
    cut_off = clock.now + timedelta(milliseconds=1)
    clock.now += timedelta(seconds=10)
    pay(ledger, "t3", ALICE, 7)
    clock.now += timedelta(minutes=5)

    assert ledger.balance_as_of(ALICE, cut_off).posted == -100
    assert ledger.balance_as_of("CLEARING-EUR", cut_off).posted == 140
    assert ledger.balance(ALICE).posted == -107  # today's, for contrast
    books = ledger.trial_balance_as_of("EUR", cut_off)
    assert (books.posted, books.read_from, books.read_to) == (0, cut_off, cut_off)


def test_a_transfer_landing_while_a_balance_is_read_is_not_half_counted(
    ledger: DynamoDBLedger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pay(ledger, "t1", ALICE, 100)
    cut_off = clock.now + timedelta(milliseconds=1)
    clock.now += timedelta(minutes=5)
    read = ledger.balance
    landed: list[str] = []

    def a_posting_lands_first(account_id: str) -> Balance:
        if account_id == ALICE and not landed:
            landed.append("t2")
            pay(ledger, "t2", ALICE, 55)  # booked now, after the cut-off
        return read(account_id)

    monkeypatch.setattr(ledger, "balance", a_posting_lands_first)

    # Read once naively, the balance would hold t2 without its entry being taken off.
    assert ledger.balance_as_of(ALICE, cut_off).posted == -100
    assert landed == ["t2"]


def test_a_cut_off_still_within_reach_of_landing_bookings_is_refused(
    ledger: DynamoDBLedger, clock: Clock
) -> None:
    with pytest.raises(ValueError, match="in the past"):
        ledger.trial_balance_as_of("EUR", clock.now - timedelta(seconds=5))
    books: Any = ledger.trial_balance_as_of("EUR", clock.now - timedelta(seconds=61))
    assert books.posted == 0
