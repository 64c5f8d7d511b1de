"""The rules both ledgers share: what a caller may submit, what is refused before any state is
read, how a post splits a pending, and which entries a booking writes. Pure functions."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from payment_posting_functions.domain.ledger_v2.model import (
    EXPIRE_PREFIX,
    ID_PATTERN,
    Account,
    AccountKind,
    AccountStatus,
    BookedTransfer,
    Entry,
    PendingState,
    RefusalCode,
    Transfer,
    TransferKind,
    TransferRefused,
)

_CALLER_ID = re.compile(ID_PATTERN)


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the ledger clock must return timezone-aware datetimes")
    return value.astimezone(UTC)


def check_submitted(transfer: Transfer) -> None:
    """What only the ledger may do: derived ids, excess transfers and expiries."""
    if not _CALLER_ID.match(transfer.transfer_id):
        raise ValueError("a transfer id is 1-128 letters, digits, '_', '.' or '-'")
    if transfer.excess_of is not None or transfer.kind is TransferKind.EXPIRE_PENDING:
        raise ValueError("excess transfers and expiries are booked by the ledger itself")


def static_refusal(transfer: Transfer) -> None:
    """Refusals that depend on the transfer alone, checked before its id is looked up."""
    if transfer.amount.amount == 0 and transfer.kind not in (
        TransferKind.VOID_PENDING,
        TransferKind.EXPIRE_PENDING,
    ):
        raise TransferRefused(RefusalCode.ZERO_AMOUNT, transfer.transfer_id)
    if transfer.debit_account_id is not None and (
        transfer.debit_account_id == transfer.credit_account_id
    ):
        raise TransferRefused(RefusalCode.SAME_ACCOUNT, transfer.transfer_id)


def check_accounts(transfer: Transfer, debit: Account | None, credit: Account | None) -> None:
    """Existence, currency and status of a single or pending transfer's accounts (debit side
    first). The credit limit is checked apart: the DynamoDB ledger checks it in its write."""
    tid = transfer.transfer_id
    for account, account_id in (
        (debit, transfer.debit_account_id),
        (credit, transfer.credit_account_id),
    ):
        if account is None:
            raise TransferRefused(RefusalCode.ACCOUNT_NOT_FOUND, tid, account_id=account_id)
    assert debit is not None
    assert credit is not None
    for account in (debit, credit):
        if account.currency != transfer.amount.currency:
            raise TransferRefused(RefusalCode.CURRENCY_MISMATCH, tid, account_id=account.account_id)
    for account in (debit, credit):
        if account.status is AccountStatus.CLOSED:
            raise TransferRefused(RefusalCode.ACCOUNT_CLOSED, tid, account_id=account.account_id)
    if debit.status is AccountStatus.FROZEN:
        raise TransferRefused(RefusalCode.ACCOUNT_FROZEN, tid, account_id=debit.account_id)


def check_correction(transfer: Transfer, corrected: BookedTransfer | None) -> None:
    """A correction reverses (part of) a transfer that moved posted money: the accounts swap
    sides, the currency is the same, the amount is at most what moved."""
    if transfer.corrects is None:
        return
    if corrected is None:
        raise TransferRefused(RefusalCode.CORRECTED_TRANSFER_NOT_FOUND, transfer.transfer_id)
    if (
        corrected.transfer.kind not in (TransferKind.SINGLE, TransferKind.POST_PENDING)
        or corrected.debit_account_id != transfer.credit_account_id
        or corrected.credit_account_id != transfer.debit_account_id
        or corrected.transfer.amount.currency != transfer.amount.currency
        or transfer.amount.amount > corrected.amount
    ):
        raise TransferRefused(RefusalCode.CORRECTION_MISMATCH, transfer.transfer_id)


def guarded(transfer: Transfer, debit: Account) -> bool:
    """Whether a debit must keep the account within its credit limit."""
    return debit.kind is AccountKind.CUSTOMER and not transfer.forced


@dataclass(frozen=True)
class Resolution:
    """How a post, void or expiry splits a pending's remaining amount."""

    posted: int  # moved from pending to posted
    released: int  # given back to available
    excess: int  # above the remaining, within tolerance: booked as a linked transfer

    @property
    def consumed(self) -> int:
        return self.posted + self.released


def resolve(transfer: Transfer, pending: PendingState, now: datetime) -> Resolution:
    """Check a post, void or expiry against its pending and split the remaining."""
    tid = transfer.transfer_id
    if transfer.amount.currency != pending.currency:
        raise TransferRefused(
            RefusalCode.CURRENCY_MISMATCH, tid, account_id=pending.debit_account_id
        )
    if pending.status.value != "OPEN":
        raise TransferRefused(RefusalCode.PENDING_ALREADY_RESOLVED, tid)
    remaining = pending.remaining
    if transfer.kind is not TransferKind.POST_PENDING:
        part = transfer.amount.amount
        if transfer.kind is TransferKind.VOID_PENDING and 0 < part < remaining:
            # A partial void (a partial reversal): that much is released, the rest stays held.
            return Resolution(posted=0, released=part, excess=0)
        return Resolution(posted=0, released=remaining, excess=0)
    if pending.expires_at is not None and now >= pending.expires_at:
        raise TransferRefused(RefusalCode.PENDING_EXPIRED, tid)
    amount = transfer.amount.amount
    if amount > remaining:
        if amount - remaining > transfer.tolerance:
            raise TransferRefused(RefusalCode.EXCEEDS_PENDING_AMOUNT, tid)
        return Resolution(posted=remaining, released=0, excess=amount - remaining)
    released = remaining - amount if transfer.close else 0
    return Resolution(posted=amount, released=released, excess=0)


def move_entries(
    transfer_id: str,
    debit_account_id: str,
    credit_account_id: str,
    currency: str,
    now: datetime,
    *,
    posted: int = 0,
    pending: int = 0,
) -> tuple[Entry, Entry]:
    """The debit side's and the credit side's entry: ``posted`` moves posted money, ``pending``
    changes what is reserved (negative: a reservation consumed or released)."""
    return (
        Entry(
            account_id=debit_account_id,
            counter_account_id=credit_account_id,
            transfer_id=transfer_id,
            currency=currency,
            timestamp=now,
            posted=-posted,
            pending_debits=pending,
        ),
        Entry(
            account_id=credit_account_id,
            counter_account_id=debit_account_id,
            transfer_id=transfer_id,
            currency=currency,
            timestamp=now,
            posted=posted,
            pending_credits=pending,
        ),
    )


def booking_entries(
    transfer: Transfer, debit_id: str, credit_id: str, now: datetime, resolution: Resolution | None
) -> tuple[Entry, Entry]:
    currency = transfer.amount.currency
    tid = transfer.transfer_id
    if transfer.kind is TransferKind.SINGLE:
        return move_entries(tid, debit_id, credit_id, currency, now, posted=transfer.amount.amount)
    if transfer.kind is TransferKind.PENDING:
        return move_entries(tid, debit_id, credit_id, currency, now, pending=transfer.amount.amount)
    assert resolution is not None
    return move_entries(
        tid,
        debit_id,
        credit_id,
        currency,
        now,
        posted=resolution.posted,
        pending=-resolution.consumed,
    )


def entry_sort_key(timestamp: datetime, transfer_id: str) -> str:
    # Fixed width (microseconds always present, always UTC) so that string order is time order.
    return f"ENTRY#{utc(timestamp).isoformat(timespec='microseconds')}#{transfer_id}"


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        raise ValueError("not a statement cursor") from None
    if not key.startswith("ENTRY#"):
        raise ValueError("not a statement cursor")
    return key


def is_expiry(transfer_id: str) -> bool:
    return transfer_id.startswith(EXPIRE_PREFIX)
