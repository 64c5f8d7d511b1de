"""From an approved transaction to the posting the ledger or core system should make."""

from __future__ import annotations

from dataclasses import dataclass

from payment_posting_functions.domain.card_message import (
    DEFAULT_HOLD_SECONDS,
    LONG_HOLD_SECONDS,
    MessageClass,
    TransactionType,
    hold_seconds,
)
from payment_posting_functions.domain.events import TransactionApproved
from payment_posting_functions.domain.ledger_v2.house import clearing_account
from payment_posting_functions.domain.posting import Direction, PostingRequest

__all__ = ["LifecycleSettings", "clearing_account", "posting_request_for"]


@dataclass(frozen=True)
class LifecycleSettings:
    """How the card lifecycle is posted: the construct sets these (``BufferedPoster``).

    ``tip_tolerance_bps``: how far above its authorization a clearing may post without being
    forced, in basis points of the authorized amount (2,000: a 20 % restaurant tip).
    """

    hold_seconds: int = DEFAULT_HOLD_SECONDS
    long_hold_seconds: int = LONG_HOLD_SECONDS
    tip_tolerance_bps: int = 2_000

    def __post_init__(self) -> None:
        if self.hold_seconds < 1 or self.long_hold_seconds < 1:
            raise ValueError("hold windows are at least one second")
        if not 0 <= self.tip_tolerance_bps <= 10_000:
            raise ValueError("tip_tolerance_bps is between 0 and 10,000")


def posting_request_for(
    approved: TransactionApproved,
    settings: LifecycleSettings | None = None,
    *,
    original_overdue: bool = False,
) -> PostingRequest:
    """Debit (or, for a refund, credit) the posting account by the billing amount, as the
    message's class says (``PostingRequest``).

    The posting account is the customer's, or suspense when enrichment found no account;
    the counter leg goes to the clearing account of the billing currency.
    """
    settings = settings or LifecycleSettings()
    transaction = approved.transaction
    billed = transaction.billing_amount
    kind = transaction.message_class
    refund = transaction.transaction_type is TransactionType.REFUND
    # A reversal carries its original's processing code: its direction is the original's,
    # and the posting system moves the money back the other way.
    direction = Direction.CREDIT if refund else Direction.DEBIT
    forced = (
        f"advice {transaction.mti}: decided by the stand-in or the scheme"
        if transaction.advice
        else None
    )
    return PostingRequest(
        transaction_id=approved.transaction_id,
        account_id=approved.enrichment.posting_account_id,
        counter_account_id=clearing_account(billed.currency),
        amount=billed,
        direction=direction,
        message_class=kind,
        link_id=transaction.original_link_id if kind is MessageClass.REVERSAL
        else transaction.link_id,
        original_link_id=transaction.original_link_id
        if refund and kind is not MessageClass.REVERSAL
        else None,
        forced_reason=forced,
        hold_seconds=hold_seconds(
            transaction.mcc, default=settings.hold_seconds, long=settings.long_hold_seconds
        )
        if kind is MessageClass.AUTHORIZATION
        else None,
        tolerance_bps=settings.tip_tolerance_bps if kind is MessageClass.CLEARING else 0,
        final=transaction.final_clearing is not False,
        original_overdue=original_overdue,
    )  # fmt: skip
