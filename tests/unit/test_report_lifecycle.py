"""What the run report makes of the card lifecycle's events and of the ledger's books, with
the events built from the catalogue's models (the posting side that publishes them is
another change; tests/local/test_lifecycle_run.py runs the phases that produce them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from payment_local.event_log import LoggedEvent
from payment_local.report import ledger_check, lifecycle_summary
from payment_posting_functions.domain.card_message import MessageClass
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import (
    AuthorizationHeld,
    ClearingMatched,
    HoldExpired,
    InquiryCompleted,
    LifecycleEvent,
    ReversalApplied,
    TransactionPosted,
)
from payment_posting_functions.domain.ledger_v2.model import (
    Balance,
    PendingState,
    PendingStatus,
    TrialBalance,
)
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
CARD = "ACC-0001"
CLEARING = "CLEARING-EUR"


def logged(event: LifecycleEvent) -> LoggedEvent:
    return LoggedEvent(0.0, "bus", event.SOURCE.value, event.NAME.value, event.to_detail())


def eur(amount: int) -> Money:
    return Money(amount=amount, currency="EUR")


def held(tx: str, amount: int, *, status: str = "POSTED", forced: str | None = None) -> LoggedEvent:
    return logged(
        AuthorizationHeld(transaction_id=tx, pending_id=f"l1.{tx}", posting_status=status,
                          account_id=CARD, counter_account_id=CLEARING, amount=eur(amount),
                          hold_seconds=604_800, forced_reason=forced, posting_system="ledger")
    )  # fmt: skip


def cleared(tx: str, amount: int, *, final: bool, excess: int = 0) -> LoggedEvent:
    return logged(
        ClearingMatched(transaction_id=tx, pending_id="l1.x", posting_status="POSTED",
                        account_id=CARD, counter_account_id=CLEARING, amount=eur(amount),
                        excess=excess, final=final, posting_system="ledger")
    )  # fmt: skip


def posted(tx: str, amount: int, message_class: MessageClass, **extra: str) -> LoggedEvent:
    return logged(
        TransactionPosted(transaction_id=tx, posting_id=tx, posting_status="POSTED",
                          account_id=CARD, counter_account_id=CLEARING, amount=eur(amount),
                          direction=extra.pop("direction", "DEBIT"), posting_system="ledger",
                          message_class=message_class, **extra)
    )  # fmt: skip


def reversed_(tx: str, amount: int, applied_as: str, *, partial: bool) -> LoggedEvent:
    return logged(
        ReversalApplied(transaction_id=tx, original_id="l1.x", applied_as=applied_as,
                        posting_status="POSTED", account_id=CARD, amount=eur(amount),
                        partial=partial, posting_system="ledger")
    )  # fmt: skip


def test_the_lifecycle_is_counted_and_summed_from_the_posting_events() -> None:
    transaction = AuthorizedTransaction.model_validate(
        valid_item(mti="0200", processingCode="310000")
    )
    events = [
        held("a1", 10_000),
        held("a1", 10_000, status="ALREADY_POSTED"),  # a repeat delivery: moved nothing
        held("a2", 5_000, forced="advice"),
        held("a3", 2_500),
        cleared("c1", 11_500, final=True, excess=1_500),  # a tip above the hold
        cleared("c2", 2_000, final=False),
        cleared("c3", 2_500, final=True),
        posted("o1", 700, MessageClass.CLEARING, forced_reason="no authorization"),
        posted("f1", 4_000, MessageClass.FINANCIAL),
        posted("r1", 1_000, MessageClass.CLEARING, direction="CREDIT"),
        reversed_("v1", 5_000, "VOID", partial=False),
        reversed_("v2", 1_000, "CORRECTION", partial=True),
        logged(
            HoldExpired(transaction_id="a3", pending_id="l1.a3", account_id=CARD, released=eur(500))
        ),
        logged(
            InquiryCompleted(
                transaction_id="i1", transaction=transaction, enrichment=enrich(transaction, None)
            )
        ),
    ]

    summary = lifecycle_summary(events)

    assert summary["holds"] == {"placed": 3, "repeats": 1, "forced": 1, "amount": {"EUR": 17_500}}
    assert summary["clearings"] == {
        "matched": 3,
        "final": 2,
        "partial": 1,
        "aboveTheHold": 1,
        "amount": {"EUR": 16_000},
        "withoutAuthorization": 1,
        "withoutAuthorizationAmount": {"EUR": 700},
    }
    assert summary["posted"] == {
        "byMessageClass": {"CLEARING": 2, "FINANCIAL": 1},
        "credits": 1,
        "amount": {"EUR": 5_700},
    }
    assert summary["reversals"] == {
        "void": 1, "correction": 1, "partial": 1, "amount": {"EUR": 6_000}}  # fmt: skip
    assert summary["expiries"] == {"count": 1, "released": {"EUR": 500}}
    assert summary["inquiries"] == 1


def pending(
    pending_id: str, remaining: int, status: PendingStatus, **extra: object
) -> PendingState:
    return PendingState.model_validate(
        {"pending_id": pending_id, "debit_account_id": CARD, "credit_account_id": CLEARING,
         "currency": "EUR", "amount": 10_000, "remaining": remaining, "status": status, **extra}
    )  # fmt: skip


def trial(pending_debits: int, pending_credits: int, posted: int = 0) -> dict[str, TrialBalance]:
    balance = TrialBalance(currency="EUR", posted=posted, pending_debits=pending_debits,
                           pending_credits=pending_credits, read_from=NOW, read_to=NOW)  # fmt: skip
    return {"EUR": balance}


def balance(account: str, pending_debits: int = 0, pending_credits: int = 0) -> Balance:
    return Balance(account_id=account, currency="EUR", pending_debits=pending_debits,
                   pending_credits=pending_credits)  # fmt: skip


def test_books_that_add_up_pass_the_check() -> None:
    pendings = [
        pending("l1.a1", 6_000, PendingStatus.OPEN, expires_at=NOW + timedelta(days=7)),
        pending("l1.a2", 0, PendingStatus.POSTED),
        pending("l1.a3", 0, PendingStatus.EXPIRED),
    ]
    events = [held("a1", 10_000), held("a2", 10_000), held("a3", 10_000),
              logged(HoldExpired(transaction_id="a3", pending_id="l1.a3", account_id=CARD,
                                 released=eur(10_000)))]  # fmt: skip

    check = ledger_check(
        [balance(CARD, pending_debits=6_000), balance(CLEARING, pending_credits=6_000)],
        pendings, trial(6_000, 6_000), events, expired_as_of=None,
    )  # fmt: skip

    assert check["problems"] == []
    assert check["pendings"] == {"total": 3, "OPEN": 1, "POSTED": 1, "VOIDED": 0, "EXPIRED": 1}
    assert check["openRemaining"] == {"EUR": 6_000}
    assert (check["holdsAnnounced"], check["expiryEvents"]) == (3, 1)


def test_every_way_the_books_can_disagree_is_a_problem() -> None:
    pendings = [
        # Open although the run let time pass beyond its expiry.
        pending("l1.a1", 6_000, PendingStatus.OPEN, expires_at=NOW - timedelta(days=1)),
        pending("l1.zz", 0, PendingStatus.EXPIRED),  # nobody announced it, nor its expiry
        pending("l1.a3", 1_000, PendingStatus.OPEN, debit_account_id="ACC-GONE"),
    ]
    events = [held("a1", 10_000), held("a2", 10_000)]  # a2's hold is not in the ledger

    check = ledger_check(
        [balance(CARD, pending_debits=6_500), balance(CLEARING, pending_credits=7_000)],
        pendings, trial(6_500, 7_000, posted=3), events, expired_as_of=NOW,
    )  # fmt: skip

    assert check["problems"] == [
        "1 accounts whose pending balance is not their open holds' remaining, e.g. ACC-0001",
        "1 accounts with open holds that the ledger does not list, e.g. ACC-GONE",
        "1 holds announced (AuthorizationHeld) with no pending in the ledger, e.g. l1.a2",
        "2 pendings in the ledger no AuthorizationHeld announced, e.g. l1.a3, l1.zz",
        "1 expired pendings with no HoldExpired event, e.g. l1.zz",
        "1 holds still open past their expiry after the run let them expire, e.g. l1.a1",
        "1 currencies whose trial balance is not zero, e.g. EUR",
    ]
    assert check["overdue"] == ["l1.a1"]
    assert check["expiredAsOf"] == NOW.isoformat()
