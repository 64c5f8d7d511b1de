"""Random card lifecycles through the posting port, in any order the pipeline may deliver.

Each card transaction is a lifecycle the schemes send in order (an authorization, then its
clearings or a reversal; a financial message, then maybe its reversal; a refund). The
pipeline does not keep that order and delivers at least once: messages here arrive in a
random order, some twice, and one whose original is not in yet goes back to the queue (as
the posting function's ``OriginalNotYetPosted`` does) until it is overdue.

Properties: every message ends in exactly one outcome and a repeat answers with it, moving
nothing; the ledger stays balanced; the cardholder's posted balance is the sum of what the
outcomes say moved; once the holds have expired, nothing is held. In the schemes' own order
the balances are exactly what the lifecycles mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import TransactionApproved
from payment_posting_functions.domain.ledger_v2.house import clearing_account
from payment_posting_functions.domain.ledger_v2.posting_adapter import LedgerPostingSystem
from payment_posting_functions.domain.ledger_v2.reference import InMemoryLedger
from payment_posting_functions.domain.posting import (
    OriginalNotYetPosted,
    PermanentPostingError,
    PostingOutcome,
    PostingResult,
    PostingStatus,
)
from payment_posting_functions.domain.posting_instructions import posting_request_for
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

ACCOUNT = sample_accounts()[0]
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
WAIT_RECEIVES = 4  # the stack's default: maxReceiveCount 5, overdue on the 4th receive


@dataclass(frozen=True)
class Message:
    tid: str
    mti: str
    amount: int
    code: str = "000000"
    final: bool | None = None
    original_mti: str | None = None  # a reversal's or refund's original
    card: int = 0  # which card transaction (its RRN and auth code)

    def approved(self) -> TransactionApproved:
        rrn, auth = f"{self.card:012d}", f"A{self.card:05d}"
        own = {"rrn": rrn, "authCode": auth}
        extra: dict[str, Any] = {}
        if self.original_mti is not None:
            own = {"rrn": f"{self.card + 500_000:012d}", "authCode": f"R{self.card:05d}"}
            extra["original"] = {"mti": self.original_mti, "stan": "000001",
                                 "transmittedAt": START.isoformat(), "rrn": rrn,
                                 "authCode": auth}  # fmt: skip
        if self.final is not None:
            extra["finalClearing"] = self.final
        money = {"amount": self.amount, "currency": "EUR"}
        item = valid_item(transactionId=self.tid, mti=self.mti, processingCode=self.code,
                          transactionAmount=money, billingAmount=money,
                          conversionRate="1.00000000", acquirerCountry="DE",
                          accountId=ACCOUNT.account_id, **own, **extra)  # fmt: skip
        transaction = AuthorizedTransaction.model_validate(item)
        return TransactionApproved(
            transaction_id=self.tid,
            transaction=transaction,
            enrichment=enrich(transaction, ACCOUNT),
        )


@dataclass
class Lifecycle:
    messages: list[Message]
    posted: int  # the cardholder's posted balance it leaves, in the schemes' order
    held: int  # what it leaves held, in the schemes' order


amounts = st.integers(min_value=100, max_value=50_000)


@st.composite
def lifecycles(draw: st.DrawFn, card: int) -> Lifecycle:
    def tid(kind: str) -> str:
        return f"tx-{card:04d}-{kind}"

    amount = draw(amounts)
    kind = draw(st.sampled_from(["cleared", "split", "reversed", "uncleared", "atm", "refund"]))
    auth = Message(tid("auth"), draw(st.sampled_from(["0100", "0120"])), amount, card=card)
    if kind == "cleared":
        final = draw(st.integers(min_value=amount // 2, max_value=amount * 6 // 5))
        return Lifecycle([auth, Message(tid("clr"), "1240", final, card=card)], -final, 0)
    if kind == "split":
        first = draw(st.integers(min_value=1, max_value=amount // 2))
        second = draw(st.integers(min_value=1, max_value=amount - first))
        parts = [Message(tid("clr1"), "1240", first, final=False, card=card),
                 Message(tid("clr2"), "1240", second, card=card)]  # fmt: skip
        return Lifecycle([auth, *parts], -(first + second), 0)
    if kind == "reversed":
        undone = draw(st.integers(min_value=1, max_value=amount))
        reversal = Message(tid("rev"), draw(st.sampled_from(["0400", "0420"])), undone,
                           original_mti=auth.mti, card=card)  # fmt: skip
        return Lifecycle([auth, reversal], 0, amount - undone)
    if kind == "uncleared":
        return Lifecycle([auth], 0, amount)
    if kind == "atm":
        atm = Message(tid("atm"), "0200", amount, code="011000", card=card)
        if not draw(st.booleans()):
            return Lifecycle([atm], -amount, 0)
        undone = draw(st.integers(min_value=1, max_value=amount))
        reversal = Message(tid("rev"), "0400", undone, code="011000", original_mti="0200",
                           card=card)  # fmt: skip
        return Lifecycle([atm, reversal], -amount + undone, 0)
    return Lifecycle([Message(tid("refund"), "0200", amount, code="200000", card=card)], amount, 0)


@st.composite
def deliveries(draw: st.DrawFn, *, shuffled: bool) -> tuple[list[Lifecycle], list[Message]]:
    count = draw(st.integers(min_value=1, max_value=6))
    cycles = [draw(lifecycles(card)) for card in range(1, count + 1)]
    if shuffled:
        order = draw(st.permutations([m for c in cycles for m in c.messages]))
    else:  # the schemes' order: each lifecycle in order, lifecycles interleaved
        order, queues = [], [list(c.messages) for c in cycles]
        while any(queues):
            queue = draw(st.sampled_from([q for q in queues if q]))
            order.append(queue.pop(0))
    repeats = draw(st.lists(st.sampled_from(order), max_size=4))
    return cycles, list(order) + repeats


@dataclass
class Run:
    ledger: InMemoryLedger
    outcomes: dict[str, PostingResult | str] = field(default_factory=dict)


def deliver(messages: list[Message]) -> Run:
    clock = [START]
    ledger = InMemoryLedger(clock=lambda: clock[0])
    ledger.open_account(ACCOUNT.account_id, "EUR", credit_limit=10**9)
    poster = LedgerPostingSystem(ledger)
    run = Run(ledger)
    queue = [(m, 1) for m in messages]
    while queue:
        message, receives = queue.pop(0)
        request = posting_request_for(
            message.approved(), original_overdue=receives >= WAIT_RECEIVES
        )
        try:
            result: PostingResult | str = poster.post(request)
        except OriginalNotYetPosted:
            queue.append((message, receives + 1))  # back to the queue, received again later
            continue
        except PermanentPostingError as failure:
            result = failure.code.value
        first = run.outcomes.setdefault(message.tid, result)
        if first is not result:  # a repeat: the same outcome, nothing moved
            if isinstance(first, str):
                assert result == first
            else:
                assert isinstance(result, PostingResult)
                assert result.status is PostingStatus.ALREADY_POSTED
                assert result.model_copy(update={"status": first.status}) == first
    return run


def moved(outcomes: dict[str, PostingResult | str], messages: list[Message]) -> int:
    """The posted money the outcomes say moved on the cardholder's account."""
    by_id = {m.tid: m for m in messages}
    total = 0
    for tid, result in outcomes.items():
        if isinstance(result, str):
            continue
        credit = by_id[tid].code.startswith("20")
        amount = by_id[tid].amount
        if result.outcome in (PostingOutcome.POSTED, PostingOutcome.CLEARED):
            total += amount if credit else -amount
        elif result.outcome is PostingOutcome.CORRECTED:
            total += -amount if credit else amount
    return total


def check_balanced(ledger: InMemoryLedger) -> None:
    trial = ledger.trial_balance("EUR")
    assert trial.posted == 0
    assert trial.pending_debits == trial.pending_credits
    clearing = ledger.balance(clearing_account("EUR"))
    mine = ledger.balance(ACCOUNT.account_id)
    assert mine.posted == -clearing.posted


@settings(max_examples=150, deadline=None)
@given(deliveries(shuffled=False))
def test_in_the_schemes_order_balances_are_what_the_lifecycles_mean(
    drawn: tuple[list[Lifecycle], list[Message]],
) -> None:
    cycles, order = drawn
    run = deliver(order)
    assert set(run.outcomes) == {m.tid for c in cycles for m in c.messages}
    assert not [r for r in run.outcomes.values() if isinstance(r, str)]  # nothing refused
    balance = run.ledger.balance(ACCOUNT.account_id)
    assert balance.posted == sum(c.posted for c in cycles)
    assert balance.pending_debits == sum(c.held for c in cycles)
    check_balanced(run.ledger)


@settings(max_examples=150, deadline=None)
@given(deliveries(shuffled=True))
def test_in_any_order_each_message_ends_once_and_nothing_is_lost_or_made(
    drawn: tuple[list[Lifecycle], list[Message]],
) -> None:
    cycles, order = drawn
    messages = [m for c in cycles for m in c.messages]
    run = deliver(order)
    assert set(run.outcomes) == {m.tid for m in messages}
    balance = run.ledger.balance(ACCOUNT.account_id)
    assert balance.posted == moved(run.outcomes, messages)
    check_balanced(run.ledger)
    # Every hold is released in the end: cleared, voided, or expired by the sweeper.
    run.ledger.expire_due(START + timedelta(days=32))
    assert run.ledger.balance(ACCOUNT.account_id).pending_debits == 0
    check_balanced(run.ledger)
