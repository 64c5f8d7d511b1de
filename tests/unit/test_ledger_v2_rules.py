"""Ledger v2, one rule per test: every test runs against each ledger in ``LEDGERS``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3
import pytest
from moto import mock_aws

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.house import clearing_account, suspense_account
from payment_posting_functions.domain.ledger_v2.model import (
    Account,
    AccountError,
    AccountStatus,
    Balance,
    BookedTransfer,
    PendingState,
    PendingStatus,
    RefusalCode,
    StatementPage,
    Transfer,
    TransferKind,
    TransferRefused,
    TransferResult,
    TransferStatus,
    TrialBalance,
)
from payment_posting_functions.domain.ledger_v2.reference import InMemoryLedger
from payment_posting_functions.domain.money import Money

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ALICE = "acc-alice"
BOB = "acc-bob"
CLEARING = clearing_account("EUR")


class Clock:
    """Advances one millisecond per reading; ``advance`` jumps ahead."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class AnyLedger(Protocol):
    def open_account(self, account_id: str, currency: str, *, credit_limit: int = 0) -> Account: ...
    def account(self, account_id: str) -> Account | None: ...
    def freeze(self, account_id: str) -> Account: ...
    def unfreeze(self, account_id: str) -> Account: ...
    def close(self, account_id: str) -> Account: ...
    def create_transfer(self, transfer: Transfer) -> TransferResult: ...
    def expire_due(
        self, now: datetime | None = None, *, limit: int | None = None
    ) -> list[TransferResult]: ...
    def balance(self, account_id: str) -> Balance: ...
    def lookup_transfer(self, transfer_id: str) -> BookedTransfer | None: ...
    def pending(self, pending_id: str) -> PendingState | None: ...
    def statement(
        self,
        account_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> StatementPage: ...
    def trial_balance(self, currency: str) -> TrialBalance: ...


def make_memory(clock: Clock) -> Iterator[AnyLedger]:
    yield InMemoryLedger(clock=clock)


def make_dynamodb(clock: Clock) -> Iterator[AnyLedger]:
    with mock_aws():
        client = boto3.client("dynamodb")
        for definition in table_definitions("journal", "balances"):
            client.create_table(**definition)
        # Few shards, so that a handful of transfers share some and the merge is exercised.
        yield DynamoDBLedger(client, "journal", "balances", clock=clock, house_shards=4)


LEDGERS: dict[str, Any] = {"memory": make_memory, "dynamodb": make_dynamodb}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=sorted(LEDGERS))
def ledger(request: pytest.FixtureRequest, clock: Clock) -> Iterator[AnyLedger]:
    made = LEDGERS[request.param](clock)
    ledger = next(made)
    ledger.open_account(ALICE, "EUR", credit_limit=500)
    ledger.open_account(BOB, "EUR")
    ledger.open_account(CLEARING, "EUR")
    ledger.open_account(suspense_account("EUR"), "EUR")
    yield ledger
    next(made, None)


def eur(amount: int) -> Money:
    return Money(amount=amount, currency="EUR")


def single(transfer_id: str, debit: str, credit: str, amount: int, **extra: Any) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=eur(amount),
        **extra,
    )


def pending(transfer_id: str, debit: str, credit: str, amount: int, **extra: Any) -> Transfer:
    return single(transfer_id, debit, credit, amount, kind=TransferKind.PENDING, **extra)


def post(transfer_id: str, pending_id: str, amount: int, **extra: Any) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        kind=TransferKind.POST_PENDING,
        pending_id=pending_id,
        amount=eur(amount),
        **extra,
    )


def void(transfer_id: str, pending_id: str) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        kind=TransferKind.VOID_PENDING,
        pending_id=pending_id,
        amount=eur(0),
    )


def refusal(ledger: AnyLedger, transfer: Transfer) -> TransferRefused:
    with pytest.raises(TransferRefused) as caught:
        ledger.create_transfer(transfer)
    return caught.value


def parts(ledger: AnyLedger, account_id: str) -> tuple[int, int, int, int]:
    b = ledger.balance(account_id)
    return b.posted, b.pending_debits, b.pending_credits, b.available


def fund(ledger: AnyLedger, account_id: str, amount: int) -> None:
    ledger.create_transfer(single(f"fund-{account_id}", CLEARING, account_id, amount))


# -- single transfers and immutability ---------------------------------------------------------


def test_a_single_transfer_moves_posted_money_both_ways(ledger: AnyLedger) -> None:
    result = ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    assert result == TransferResult(status=TransferStatus.CREATED, transfer_id="t1")
    assert parts(ledger, ALICE) == (-300, 0, 0, -300)
    assert parts(ledger, CLEARING) == (300, 0, 0, 300)


def test_a_redelivery_is_already_exists_and_moves_nothing(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    again = ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    assert again.status is TransferStatus.ALREADY_EXISTS
    assert parts(ledger, ALICE) == (-300, 0, 0, -300)
    assert len(ledger.statement(ALICE).entries) == 1


def test_a_conflicting_repeat_is_refused_naming_the_fields(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    refused = refusal(ledger, single("t1", BOB, CLEARING, 301))
    assert refused.reason is RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS
    assert refused.fields == ("amount", "debit_account_id")
    assert parts(ledger, BOB) == (0, 0, 0, 0)
    assert parts(ledger, ALICE) == (-300, 0, 0, -300)


def test_zero_amounts_and_same_account_transfers_are_refused(ledger: AnyLedger) -> None:
    assert refusal(ledger, single("t1", ALICE, CLEARING, 0)).reason is RefusalCode.ZERO_AMOUNT
    assert refusal(ledger, single("t2", ALICE, ALICE, 5)).reason is RefusalCode.SAME_ACCOUNT


def test_a_refused_transfer_leaves_its_id_unused(ledger: AnyLedger) -> None:
    refusal(ledger, single("t1", ALICE, CLEARING, 10_000))
    assert ledger.lookup_transfer("t1") is None
    fund(ledger, ALICE, 10_000)
    assert ledger.create_transfer(single("t1", ALICE, CLEARING, 10_000)).status.value == "CREATED"


def test_callers_cannot_use_the_ids_the_ledger_derives(ledger: AnyLedger) -> None:
    with pytest.raises(ValueError, match="transfer id"):
        ledger.create_transfer(single("t1:excess", ALICE, CLEARING, 1))
    with pytest.raises(ValueError, match="booked by the ledger"):
        ledger.create_transfer(
            Transfer(
                transfer_id="x",
                kind=TransferKind.EXPIRE_PENDING,
                pending_id="p",
                amount=eur(0),
            )
        )


# -- accounts ------------------------------------------------------------------------------------


def test_an_unknown_account_is_refused_so_the_caller_can_use_suspense(ledger: AnyLedger) -> None:
    refused = refusal(ledger, single("t1", "acc-typo", CLEARING, 5))
    assert refused.reason is RefusalCode.ACCOUNT_NOT_FOUND
    assert refused.account_id == "acc-typo"
    assert ledger.account("acc-typo") is None
    ledger.create_transfer(single("t1", suspense_account("EUR"), CLEARING, 5))
    assert ledger.balance("SUSPENSE-EUR").posted == -5


def test_a_house_account_opens_on_first_use_in_the_currency_it_names(
    ledger: AnyLedger,
) -> None:
    # Nothing opened the GBP house accounts: a deployed stack's first GBP posting opens them.
    ledger.open_account("acc-gbp", "GBP", credit_limit=100)
    gbp = Money(amount=7, currency="GBP")
    transfer = Transfer(
        transfer_id="t1", debit_account_id="acc-gbp", credit_account_id="CLEARING-GBP", amount=gbp
    )
    assert ledger.create_transfer(transfer).status is TransferStatus.CREATED
    opened = ledger.account("CLEARING-GBP")
    assert opened is not None
    assert (opened.currency, opened.credit_limit) == ("GBP", 0)
    assert ledger.balance("CLEARING-GBP").posted == 7
    assert ledger.trial_balance("GBP").posted == 0


def test_a_house_account_of_another_currency_is_not_opened_by_a_transfer(
    ledger: AnyLedger,
) -> None:
    refused = refusal(ledger, single("t1", ALICE, "CLEARING-USD", 5))
    assert refused.reason is RefusalCode.ACCOUNT_NOT_FOUND
    assert refused.account_id == "CLEARING-USD"
    assert ledger.account("CLEARING-USD") is None


def test_a_currency_that_does_not_match_the_account_is_refused(ledger: AnyLedger) -> None:
    ledger.open_account("acc-yen", "JPY")
    ledger.open_account(clearing_account("JPY"), "JPY")
    transfer = Transfer(
        transfer_id="t1",
        debit_account_id="acc-yen",
        credit_account_id=CLEARING,
        amount=Money(amount=5, currency="JPY"),
    )
    refused = refusal(ledger, transfer)
    assert refused.reason is RefusalCode.CURRENCY_MISMATCH
    assert refused.account_id == CLEARING


def test_opening_again_with_the_same_settings_is_a_no_op(ledger: AnyLedger) -> None:
    assert ledger.open_account(ALICE, "EUR", credit_limit=500).credit_limit == 500
    with pytest.raises(AccountError, match="other settings"):
        ledger.open_account(ALICE, "EUR", credit_limit=0)
    with pytest.raises(AccountError, match="currency it names"):
        ledger.open_account("CLEARING-USD", "EUR")


def test_a_frozen_account_refuses_debits_and_takes_credits(ledger: AnyLedger) -> None:
    ledger.freeze(ALICE)
    assert refusal(ledger, single("t1", ALICE, CLEARING, 5)).reason is RefusalCode.ACCOUNT_FROZEN
    assert refusal(ledger, pending("p1", ALICE, CLEARING, 5)).reason is RefusalCode.ACCOUNT_FROZEN
    ledger.create_transfer(single("t2", CLEARING, ALICE, 7))
    ledger.unfreeze(ALICE)
    ledger.create_transfer(single("t1", ALICE, CLEARING, 5))
    assert ledger.balance(ALICE).posted == 2


def test_a_pending_taken_before_a_freeze_can_still_be_posted(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 100))
    ledger.freeze(ALICE)
    ledger.create_transfer(post("c1", "p1", 100))
    assert parts(ledger, ALICE) == (-100, 0, 0, -100)


def test_only_an_empty_account_closes_and_a_closed_one_refuses_all(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", CLEARING, BOB, 5))
    with pytest.raises(AccountError, match="not empty"):
        ledger.close(BOB)
    ledger.create_transfer(single("t2", BOB, CLEARING, 5))
    assert ledger.close(BOB).status is AccountStatus.CLOSED
    assert refusal(ledger, single("t3", CLEARING, BOB, 1)).reason is RefusalCode.ACCOUNT_CLOSED
    with pytest.raises(AccountError, match="closed for good"):
        ledger.unfreeze(BOB)


def test_house_accounts_cannot_be_frozen(ledger: AnyLedger) -> None:
    with pytest.raises(AccountError, match="house account"):
        ledger.freeze(CLEARING)


# -- balance constraints -------------------------------------------------------------------------


def test_a_debit_may_use_the_credit_limit_and_no_more(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", ALICE, CLEARING, 500))
    refused = refusal(ledger, single("t2", ALICE, CLEARING, 1))
    assert refused.reason is RefusalCode.EXCEEDS_CREDIT_LIMIT
    assert refused.account_id == ALICE
    assert (
        refusal(ledger, single("t3", BOB, CLEARING, 1)).reason is RefusalCode.EXCEEDS_CREDIT_LIMIT
    )
    assert parts(ledger, ALICE) == (-500, 0, 0, -500)


def test_pending_debits_count_against_the_limit(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 400))
    assert refusal(ledger, single("t1", ALICE, CLEARING, 101)).reason is (
        RefusalCode.EXCEEDS_CREDIT_LIMIT
    )
    ledger.create_transfer(single("t1", ALICE, CLEARING, 100))


def test_a_forced_transfer_passes_the_limit_and_says_why(ledger: AnyLedger) -> None:
    forced = single("t1", BOB, CLEARING, 900, forced=True, forced_reason="scheme settled")
    ledger.create_transfer(forced)
    assert ledger.balance(BOB).posted == -900
    booked = ledger.lookup_transfer("t1")
    assert booked is not None
    assert booked.transfer.forced_reason == "scheme settled"
    with pytest.raises(ValueError, match="says why"):
        single("t2", BOB, CLEARING, 1, forced=True)


def test_house_accounts_have_no_limit(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", CLEARING, BOB, 10**9))
    assert ledger.balance(CLEARING).posted == -(10**9)


# -- corrections ---------------------------------------------------------------------------------


def test_a_correction_reverses_a_transfer_without_changing_it(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    ledger.create_transfer(single("fix1", CLEARING, ALICE, 300, corrects="t1"))
    assert parts(ledger, ALICE) == (0, 0, 0, 0)
    original = ledger.lookup_transfer("t1")
    assert original is not None
    assert original.amount == 300
    assert len(ledger.statement(ALICE).entries) == 2


@pytest.mark.parametrize(
    ("correction", "code"),
    [
        (single("fix", CLEARING, ALICE, 1, corrects="nope"), "CORRECTED_TRANSFER_NOT_FOUND"),
        (single("fix", ALICE, CLEARING, 1, corrects="t1"), "CORRECTION_MISMATCH"),
        (single("fix", CLEARING, ALICE, 301, corrects="t1"), "CORRECTION_MISMATCH"),
    ],
)
def test_a_correction_must_reverse_an_existing_transfer(
    ledger: AnyLedger, correction: Transfer, code: str
) -> None:
    ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    assert refusal(ledger, correction).reason.value == code


# -- two-phase transfers -------------------------------------------------------------------------


def test_a_pending_reduces_available_not_posted(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    assert parts(ledger, ALICE) == (0, 200, 0, -200)
    assert parts(ledger, CLEARING) == (0, 0, 200, 0)
    state = ledger.pending("p1")
    assert state is not None
    assert (state.remaining, state.status) == (200, PendingStatus.OPEN)


def test_a_pending_is_posted_in_parts_up_to_its_amount(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    ledger.create_transfer(post("c1", "p1", 50))
    assert parts(ledger, ALICE) == (-50, 150, 0, -200)
    ledger.create_transfer(post("c2", "p1", 150))
    assert parts(ledger, ALICE) == (-200, 0, 0, -200)
    assert parts(ledger, CLEARING) == (200, 0, 0, 200)
    state = ledger.pending("p1")
    assert state is not None
    assert state.status is PendingStatus.POSTED
    assert refusal(ledger, post("c3", "p1", 1)).reason is RefusalCode.PENDING_ALREADY_RESOLVED


def test_a_closing_part_releases_the_rest(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    ledger.create_transfer(post("c1", "p1", 80, close=True))
    assert parts(ledger, ALICE) == (-80, 0, 0, -80)
    assert parts(ledger, CLEARING) == (80, 0, 0, 80)
    assert refusal(ledger, void("v1", "p1")).reason is RefusalCode.PENDING_ALREADY_RESOLVED


def test_a_part_is_never_posted_twice(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    ledger.create_transfer(post("c1", "p1", 150))
    assert ledger.create_transfer(post("c1", "p1", 150)).status is TransferStatus.ALREADY_EXISTS
    assert refusal(ledger, post("c2", "p1", 51)).reason is RefusalCode.EXCEEDS_PENDING_AMOUNT
    assert parts(ledger, ALICE) == (-150, 50, 0, -200)


def test_over_the_pending_within_tolerance_posts_it_and_books_the_excess(
    ledger: AnyLedger,
) -> None:
    fund(ledger, ALICE, 1_000)
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    result = ledger.create_transfer(post("c1", "p1", 230, tolerance=30))
    assert result.linked == ("c1:excess",)
    assert parts(ledger, ALICE) == (770, 0, 0, 770)
    excess = ledger.lookup_transfer("c1:excess")
    assert excess is not None
    assert (excess.amount, excess.transfer.excess_of) == (30, "c1")
    again = ledger.create_transfer(post("c1", "p1", 230, tolerance=30))
    assert (again.status, again.linked) == (TransferStatus.ALREADY_EXISTS, ("c1:excess",))
    assert parts(ledger, ALICE) == (770, 0, 0, 770)


def test_over_the_tolerance_is_refused(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    assert refusal(ledger, post("c1", "p1", 231, tolerance=30)).reason is (
        RefusalCode.EXCEEDS_PENDING_AMOUNT
    )
    assert parts(ledger, ALICE) == (0, 200, 0, -200)


def test_the_excess_is_held_to_the_credit_limit_unless_forced(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 500))
    assert refusal(ledger, post("c1", "p1", 530, tolerance=30)).reason is (
        RefusalCode.EXCEEDS_CREDIT_LIMIT
    )
    assert parts(ledger, ALICE) == (0, 500, 0, -500)
    forced = post("c1", "p1", 530, tolerance=30, forced=True, forced_reason="scheme settled")
    ledger.create_transfer(forced)
    assert parts(ledger, ALICE) == (-530, 0, 0, -530)


def test_a_void_releases_the_remaining(ledger: AnyLedger) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    ledger.create_transfer(post("c1", "p1", 50))
    ledger.create_transfer(void("v1", "p1"))
    assert parts(ledger, ALICE) == (-50, 0, 0, -50)
    assert parts(ledger, CLEARING) == (50, 0, 0, 50)
    state = ledger.pending("p1")
    assert state is not None
    assert state.status is PendingStatus.VOIDED
    assert ledger.create_transfer(void("v1", "p1")).status is TransferStatus.ALREADY_EXISTS
    assert refusal(ledger, void("v2", "p1")).reason is RefusalCode.PENDING_ALREADY_RESOLVED


def test_a_partial_void_releases_its_part_and_the_hold_stays_open(ledger: AnyLedger) -> None:
    # A partial reversal of an authorization: 80 of 200 released, 120 still held for the
    # clearing, which then posts it and closes the pending.
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    partial = Transfer(
        transfer_id="v1", kind=TransferKind.VOID_PENDING, pending_id="p1", amount=eur(80)
    )
    ledger.create_transfer(partial)
    assert parts(ledger, ALICE) == (0, 120, 0, -120)
    state = ledger.pending("p1")
    assert state is not None
    assert (state.status, state.remaining) == (PendingStatus.OPEN, 120)
    assert ledger.create_transfer(partial).status is TransferStatus.ALREADY_EXISTS
    assert parts(ledger, ALICE) == (0, 120, 0, -120)
    ledger.create_transfer(post("c1", "p1", 120))
    assert parts(ledger, ALICE) == (-120, 0, 0, -120)
    state = ledger.pending("p1")
    assert state is not None
    assert state.status is PendingStatus.POSTED


def test_unknown_pendings_and_other_currencies_are_refused(ledger: AnyLedger) -> None:
    assert refusal(ledger, post("c1", "nope", 5)).reason is RefusalCode.PENDING_NOT_FOUND
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200))
    in_yen = Transfer(
        transfer_id="c1",
        kind=TransferKind.POST_PENDING,
        pending_id="p1",
        amount=Money(amount=5, currency="JPY"),
    )
    assert refusal(ledger, in_yen).reason is RefusalCode.CURRENCY_MISMATCH


def test_the_sweeper_expires_due_pendings_once(ledger: AnyLedger, clock: Clock) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200, timeout_s=60))
    ledger.create_transfer(pending("p2", ALICE, CLEARING, 100, timeout_s=600))
    ledger.create_transfer(pending("p3", ALICE, CLEARING, 50))
    assert ledger.expire_due() == []
    clock.advance(60)
    assert refusal(ledger, post("c1", "p1", 5)).reason is RefusalCode.PENDING_EXPIRED
    expired = ledger.expire_due()
    assert [r.transfer_id for r in expired] == ["expire:p1"]
    assert ledger.expire_due() == []
    assert parts(ledger, ALICE) == (0, 150, 0, -150)
    state = ledger.pending("p1")
    assert state is not None
    assert state.status is PendingStatus.EXPIRED
    clock.advance(10_000)
    assert [r.transfer_id for r in ledger.expire_due()] == ["expire:p2"]
    assert parts(ledger, ALICE) == (0, 50, 0, -50)


def test_a_sweep_with_a_limit_expires_the_earliest_and_leaves_the_rest(
    ledger: AnyLedger, clock: Clock
) -> None:
    for n, timeout in enumerate((300, 60, 200, 100, 400)):
        ledger.create_transfer(pending(f"p{n}", ALICE, CLEARING, 10, timeout_s=timeout))
    clock.advance(1_000)
    assert [r.transfer_id for r in ledger.expire_due(limit=2)] == ["expire:p1", "expire:p3"]
    assert [r.transfer_id for r in ledger.expire_due(limit=2)] == ["expire:p2", "expire:p0"]
    assert [r.transfer_id for r in ledger.expire_due(limit=2)] == ["expire:p4"]
    assert parts(ledger, ALICE) == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="limit"):
        ledger.expire_due(limit=0)


def test_an_expired_remainder_is_only_what_was_not_posted(ledger: AnyLedger, clock: Clock) -> None:
    ledger.create_transfer(pending("p1", ALICE, CLEARING, 200, timeout_s=60))
    ledger.create_transfer(post("c1", "p1", 120))
    clock.advance(61)
    ledger.expire_due()
    assert parts(ledger, ALICE) == (-120, 0, 0, -120)
    assert parts(ledger, CLEARING) == (120, 0, 0, 120)


# -- the read side -------------------------------------------------------------------------------


def test_the_statement_pages_through_entries_in_time_order(ledger: AnyLedger, clock: Clock) -> None:
    for number in range(5):
        ledger.create_transfer(single(f"t{number}", CLEARING, BOB, number + 1))
    first = ledger.statement(BOB, limit=2)
    assert [e.transfer_id for e in first.entries] == ["t0", "t1"]
    assert first.cursor is not None
    second = ledger.statement(BOB, limit=2, cursor=first.cursor)
    assert [e.transfer_id for e in second.entries] == ["t2", "t3"]
    assert second.cursor is not None
    last = ledger.statement(BOB, limit=2, cursor=second.cursor)
    assert [e.transfer_id for e in last.entries] == ["t4"]
    assert last.cursor is None
    whole = ledger.statement(CLEARING)
    assert sum(e.posted for e in whole.entries) == -15
    t2 = ledger.lookup_transfer("t2")
    t4 = ledger.lookup_transfer("t4")
    assert t2 is not None
    assert t4 is not None
    window = ledger.statement(BOB, since=t2.timestamp, until=t4.timestamp)
    assert [e.transfer_id for e in window.entries] == ["t2", "t3"]


def test_the_trial_balance_is_zero_per_currency(ledger: AnyLedger) -> None:
    ledger.create_transfer(single("t1", ALICE, CLEARING, 300))
    ledger.create_transfer(pending("p1", ALICE, BOB, 100))
    trial = ledger.trial_balance("EUR")
    assert (trial.posted, trial.pending_debits, trial.pending_credits) == (0, 100, 100)
    assert trial.balanced
    assert trial.read_from <= trial.read_to
