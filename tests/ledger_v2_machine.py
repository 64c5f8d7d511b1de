"""A hypothesis state machine over ledger v2: any interleaving of opens, freezes, transfers,
pendings, posts, voids, expiries, redeliveries and conflicting repeats.

It checks the laws on the ledger under test alone (balances are the sums of their entries,
each currency's trial balance is zero, a pending resolves at most once and never posts more
than its amount plus tolerance, no conflicting repeat is booked, no limit is broken unless
forced) and, when ``differential`` is set, that the in-memory reference driven by an equal
clock gives the same outcome for every step and the same balances and pendings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from payment_posting_functions.domain.ledger_v2.house import clearing_account, suspense_account
from payment_posting_functions.domain.ledger_v2.model import (
    Account,
    AccountError,
    PendingStatus,
    RefusalCode,
    Transfer,
    TransferKind,
    TransferRefused,
    TransferStatus,
)
from payment_posting_functions.domain.ledger_v2.reference import InMemoryLedger
from payment_posting_functions.domain.money import Money

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CURRENCIES = ("EUR", "JPY")
# (id, currency, credit limit); the last two are opened only by the ``open_late`` rule.
CUSTOMERS = (
    ("c-ann", "EUR", 0),
    ("c-ben", "EUR", 300),
    ("c-cat", "JPY", 0),
    ("c-dan", "JPY", 1_000),
    ("c-eve", "EUR", 0),
    ("c-fay", "JPY", 0),
)
OPENED_AT_START = 4
HOUSE = tuple(f(c) for c in CURRENCIES for f in (clearing_account, suspense_account))
ACCOUNT_IDS = tuple(c[0] for c in CUSTOMERS) + HOUSE


class Clock:
    """One millisecond per reading; ``advance`` jumps ahead."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


Outcome = tuple[str, ...]


@dataclass
class PendingTrack:
    transfer: Transfer
    posted: int = 0
    excess: int = 0
    released: int = 0  # by voids, whole or partial
    resolved: bool = False


def _outcome(call: Callable[[], Any]) -> tuple[Outcome, Any]:
    try:
        result = call()
    except TransferRefused as refused:
        return ("refused", refused.reason.value, *refused.fields), None
    except AccountError:
        return ("account-error",), None
    if isinstance(result, list):
        return ("ok", *(f"{r.status.value}:{r.transfer_id}" for r in result)), result
    if isinstance(result, Account):
        return ("ok", result.status.value), result
    return ("ok", result.status.value, *result.linked), result


amounts = st.integers(min_value=0, max_value=700)
accounts = st.sampled_from(ACCOUNT_IDS)


class LedgerMachine(RuleBasedStateMachine):
    """Subclasses give ``create_ledger``."""

    differential: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.ledger, self._close = self.create_ledger(self.clock)
        self.ref_clock = Clock()
        self.ref = InMemoryLedger(clock=self.ref_clock) if self.differential else None
        self.number = 0
        self.opened: set[str] = set()
        self.accepted: list[Transfer] = []
        self.pendings: dict[str, PendingTrack] = {}
        self.forced_debited: set[str] = set()
        self.credit_limits = {c[0]: c[2] for c in CUSTOMERS}

    def create_ledger(self, clock: Clock) -> tuple[Any, Callable[[], None]]:
        """The ledger under test on ``clock``, and what tears it down."""
        raise NotImplementedError

    def teardown(self) -> None:
        try:
            self.audit()
        finally:
            self._close()

    # -- driving both ledgers ---------------------------------------------------------------

    def both(self, operation: Callable[[Any], Any]) -> tuple[Outcome, Any]:
        outcome, result = _outcome(lambda: operation(self.ledger))
        if self.ref is not None:
            expected, _ = _outcome(lambda: operation(self.ref))
            assert outcome == expected, (outcome, expected)
        return outcome, result

    def submit(self, transfer: Transfer) -> Outcome:
        before = self.snapshot()
        outcome, result = self.both(lambda ledger: ledger.create_transfer(transfer))
        if outcome[0] == "ok":
            assert result.status is TransferStatus.CREATED
            self.accepted.append(transfer)
            self.track(transfer, result.linked)
        else:
            assert self.snapshot() == before, "a refused transfer moved money"
        return outcome

    def next_id(self) -> str:
        self.number += 1
        return f"t{self.number}"

    @initialize()
    def open_accounts(self) -> None:
        for account_id, currency, limit in CUSTOMERS[:OPENED_AT_START]:
            self.open(account_id, currency, limit)
        for account_id in HOUSE:
            self.open(account_id, account_id.split("-")[1], 0)

    def open(self, account_id: str, currency: str, limit: int) -> None:
        outcome, _ = self.both(
            lambda ledger: ledger.open_account(account_id, currency, credit_limit=limit)
        )
        assert outcome[0] == "ok"
        self.opened.add(account_id)

    # -- rules -----------------------------------------------------------------------------------

    @rule(index=st.integers(min_value=OPENED_AT_START, max_value=len(CUSTOMERS) - 1))
    def open_late(self, index: int) -> None:
        account_id, currency, limit = CUSTOMERS[index]
        self.open(account_id, currency, limit)

    @rule(account_id=st.sampled_from([c[0] for c in CUSTOMERS]), freeze=st.booleans())
    def freeze_or_unfreeze(self, account_id: str, freeze: bool) -> None:
        self.both(
            lambda ledger: ledger.freeze(account_id) if freeze else ledger.unfreeze(account_id)
        )

    @rule(
        debit=accounts,
        credit=accounts,
        amount=amounts,
        currency=st.sampled_from(CURRENCIES),
        forced=st.booleans(),
        pending=st.booleans(),
        timeout=st.sampled_from([None, 30, 300]),
    )
    def transfer(
        self,
        debit: str,
        credit: str,
        amount: int,
        currency: str,
        forced: bool,
        pending: bool,
        timeout: int | None,
    ) -> None:
        transfer = Transfer(
            transfer_id=self.next_id(),
            kind=TransferKind.PENDING if pending else TransferKind.SINGLE,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=Money(amount=amount, currency=currency),
            forced=forced,
            forced_reason="scheme settled" if forced else None,
            timeout_s=timeout if pending else None,
        )
        self.submit(transfer)

    @rule(
        which=st.integers(min_value=0, max_value=1_000),
        amount=amounts,
        tolerance=st.sampled_from([0, 0, 50]),
        close=st.booleans(),
        forced=st.booleans(),
    )
    def post(self, which: int, amount: int, tolerance: int, close: bool, forced: bool) -> None:
        pending_id = self.pick_pending(which)
        transfer = Transfer(
            transfer_id=self.next_id(),
            kind=TransferKind.POST_PENDING,
            pending_id=pending_id,
            amount=Money(amount=amount, currency=self.pending_currency(pending_id)),
            tolerance=tolerance,
            close=close,
            forced=forced,
            forced_reason="scheme settled" if forced else None,
        )
        self.submit_resolution(transfer)

    @rule(
        which=st.integers(min_value=0, max_value=1_000),
        part=st.sampled_from([0, 0, 1, 40, 10_000]),
    )
    def void(self, which: int, part: int) -> None:
        # 0 releases the remaining; a part below it releases that much (a partial reversal).
        pending_id = self.pick_pending(which)
        transfer = Transfer(
            transfer_id=self.next_id(),
            kind=TransferKind.VOID_PENDING,
            pending_id=pending_id,
            amount=Money(amount=part, currency=self.pending_currency(pending_id)),
        )
        self.submit_resolution(transfer)

    @rule(seconds=st.sampled_from([1, 29, 31, 400]))
    def advance_and_sweep(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.ref_clock.advance(seconds)
        outcome, results = self.both(lambda ledger: ledger.expire_due())
        assert outcome[0] == "ok"
        for result in results:
            pending_id = result.transfer_id.removeprefix("expire:")
            track = self.pendings[pending_id]
            assert not track.resolved, "a pending resolved twice"
            track.resolved = True

    @rule(which=st.integers(min_value=0, max_value=1_000))
    def redeliver(self, which: int) -> None:
        if not self.accepted:
            return
        transfer = self.accepted[which % len(self.accepted)]
        before = self.snapshot()
        outcome, _ = self.both(lambda ledger: ledger.create_transfer(transfer))
        assert outcome[:2] == ("ok", "ALREADY_EXISTS"), outcome
        assert self.snapshot() == before

    @rule(which=st.integers(min_value=0, max_value=1_000), change=st.sampled_from(["amount", "c"]))
    def conflicting_repeat(self, which: int, change: str) -> None:
        if not self.accepted:
            return
        original = self.accepted[which % len(self.accepted)]
        if change == "amount":
            money = original.amount
            changed = original.model_copy(
                update={"amount": Money(amount=money.amount + 1, currency=money.currency)}
            )
        else:
            changed = original.model_copy(update={"close": not original.close})
            if original.kind is not TransferKind.POST_PENDING:
                changed = original.model_copy(update={"forced": True, "forced_reason": "x"})
                if original.forced:
                    changed = original.model_copy(update={"forced_reason": "other reason"})
        before = self.snapshot()
        outcome, _ = self.both(lambda ledger: ledger.create_transfer(changed))
        assert outcome[:2] == ("refused", RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS.value), outcome
        assert len(outcome) > 2, "the differing fields are named"
        assert self.snapshot() == before, "a conflicting repeat moved money"

    @rule()
    def audit(self) -> None:
        """Balances are the sums of their entries; every currency balances."""
        for account_id in sorted(self.opened):
            balance = self.ledger.balance(account_id)
            sums = [0, 0, 0]
            cursor = None
            while True:
                page = self.ledger.statement(account_id, limit=7, cursor=cursor)
                for entry in page.entries:
                    sums[0] += entry.posted
                    sums[1] += entry.pending_debits
                    sums[2] += entry.pending_credits
                if page.cursor is None:
                    break
                cursor = page.cursor
            assert sums == [balance.posted, balance.pending_debits, balance.pending_credits]
        for currency in CURRENCIES:
            # The reference's clock reads as often as the ledger's (twice per trial balance).
            self.ref_clock()
            self.ref_clock()
            trial = self.ledger.trial_balance(currency)
            assert trial.balanced, trial

    # -- bookkeeping of the machine ----------------------------------------------------------

    def pick_pending(self, which: int) -> str:
        if not self.pendings or which % 5 == 0:
            return "no-such-pending"
        ids = sorted(self.pendings)
        return ids[which % len(ids)]

    def pending_currency(self, pending_id: str) -> str:
        track = self.pendings.get(pending_id)
        return "EUR" if track is None else track.transfer.amount.currency

    def submit_resolution(self, transfer: Transfer) -> None:
        assert transfer.pending_id is not None
        track = self.pendings.get(transfer.pending_id)
        was_resolved = track is not None and track.resolved
        outcome = self.submit(transfer)
        if was_resolved:
            assert outcome[0] == "refused", outcome

    def track(self, transfer: Transfer, linked: tuple[str, ...]) -> None:
        if transfer.kind is TransferKind.PENDING:
            self.pendings[transfer.transfer_id] = PendingTrack(transfer)
        elif transfer.pending_id is not None:
            track = self.pendings[transfer.pending_id]
            assert not track.resolved, "a resolved pending accepted another part"
            state = self.ledger.pending(transfer.pending_id)
            assert state is not None
            booked = self.ledger.lookup_transfer(transfer.transfer_id)
            assert booked is not None
            if transfer.kind is TransferKind.POST_PENDING:
                track.posted += booked.amount
                if linked:
                    excess = self.ledger.lookup_transfer(linked[0])
                    assert excess is not None
                    track.excess += excess.amount
                    assert excess.amount <= transfer.tolerance
            else:
                track.released += booked.amount
                # Every minor unit of a pending is posted, released or still held.
                assert track.posted + track.released + state.remaining == (
                    track.transfer.amount.amount
                )
            amount = track.transfer.amount.amount
            assert track.posted <= amount
            assert track.posted + track.excess <= amount + transfer.tolerance
            track.resolved = state.status is not PendingStatus.OPEN
            assert track.resolved == (state.remaining == 0)
        if transfer.forced:
            self.forced_debited.add(self.debit_of(transfer))

    def debit_of(self, transfer: Transfer) -> str:
        if transfer.debit_account_id is not None:
            return transfer.debit_account_id
        assert transfer.pending_id is not None
        debit = self.pendings[transfer.pending_id].transfer.debit_account_id
        assert debit is not None
        return debit

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        if self.ref is not None:
            # Differential runs compare every balance with the reference after each step,
            # and the reference's own runs check that refusals and repeats move nothing.
            return {}
        return {
            account_id: (b.posted, b.pending_debits, b.pending_credits)
            for account_id in sorted(self.opened)
            for b in [self.ledger.balance(account_id)]
        }

    @invariant()
    def limits_hold_and_books_agree(self) -> None:
        balances: dict[str, Any] = {}
        for account_id in sorted(self.opened):
            balance = self.ledger.balance(account_id)
            balances[account_id] = balance
            if account_id in self.credit_limits and account_id not in self.forced_debited:
                assert balance.available >= -self.credit_limits[account_id], balance
        if self.ref is not None:
            for account_id, balance in balances.items():
                assert balance == self.ref.balance(account_id)
            for pending_id in self.pendings:
                assert self.ledger.pending(pending_id) == self.ref.pending(pending_id)
        totals: dict[str, int] = defaultdict(int)
        for balance in balances.values():
            totals[balance.currency] += balance.posted
        assert all(total == 0 for total in totals.values()), totals
