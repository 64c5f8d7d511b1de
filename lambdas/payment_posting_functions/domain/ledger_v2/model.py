"""The ledger's types: accounts, transfers, results, refusals, balances and statements.

Semantics (TigerBeetle-like; ``reference.InMemoryLedger`` is the executable specification):

- A transfer is immutable and unique by id. Submitting the same content again is
  ``ALREADY_EXISTS`` and moves nothing; other content under a used id is refused with
  ``EXISTS_WITH_DIFFERENT_FIELDS`` naming the fields that differ.
- ``SINGLE`` moves posted money now. ``PENDING`` reserves it: the debit account's pending
  debits and the credit account's pending credits grow, available drops, posted does not.
- ``POST_PENDING`` posts a part of a pending's remaining amount; the pending closes when the
  part is all that remains or ``close`` is set (the rest is released). A part above the
  remaining, by at most the ``tolerance`` it states, posts the remaining in full and books the
  excess as a linked ``SINGLE`` transfer ``<id>:excess``. ``VOID_PENDING`` releases the
  remaining (or, with an amount below it, that part: the pending stays open for the rest);
  the sweeper's ``EXPIRE_PENDING`` (id ``expire:<pending id>``) releases the rest once
  the pending's timeout has passed. A resolved pending refuses further parts and voids.
- Amounts are signed from the account's side: a credit is +, a debit is -.
  ``available = posted - pending_debits``. A debit to a customer account (single, pending or
  excess) must leave ``available >= -credit_limit`` unless the transfer is forced, which says
  why (``forced_reason``): a scheme that has settled is not refused by a balance rule.
- Accounts are opened before money moves, each in one currency. A frozen account refuses new
  debits (single, pending, excess) and accepts credits and the resolution of pendings taken
  before the freeze; a closed account refuses everything, and only an empty account (no
  posted balance, nothing pending) may close.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, Field, model_validator

from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import (
    CurrencyCode,
    MinorUnits,
    Money,
    SignedMinorUnits,
)
from payment_posting_functions.domain.posting import PermanentPostingError, PostingFailureCode

# "#" separates the parts of a DynamoDB key; ":" is kept for the ids the ledger derives
# (``<id>:excess``, ``expire:<pending id>``), so no caller's id can collide with them.
ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
_DERIVED_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,160}$"
EXCESS_SUFFIX = ":excess"
EXPIRE_PREFIX = "expire:"


def excess_id(transfer_id: str) -> str:
    return transfer_id + EXCESS_SUFFIX


def expire_id(pending_id: str) -> str:
    return EXPIRE_PREFIX + pending_id


class AccountKind(StrEnum):
    CUSTOMER = "CUSTOMER"  # balance constraints apply
    HOUSE = "HOUSE"  # clearing and suspense: sharded, unconstrained


class AccountStatus(StrEnum):
    OPEN = "OPEN"
    FROZEN = "FROZEN"
    CLOSED = "CLOSED"


class Account(BaseModel):
    model_config = RECORD_CONFIG

    account_id: str = Field(pattern=ID_PATTERN)
    currency: CurrencyCode
    kind: AccountKind = AccountKind.CUSTOMER
    status: AccountStatus = AccountStatus.OPEN
    # How far below zero available may go on a debit; 0 means never overdrawn.
    credit_limit: MinorUnits = 0


class AccountError(ValueError):
    """An account operation that cannot be done (opened twice differently, closed unempty,
    a house account frozen, an unknown account)."""


class TransferKind(StrEnum):
    SINGLE = "SINGLE"
    PENDING = "PENDING"
    POST_PENDING = "POST_PENDING"
    VOID_PENDING = "VOID_PENDING"
    EXPIRE_PENDING = "EXPIRE_PENDING"


_RESOLVING = frozenset(
    {TransferKind.POST_PENDING, TransferKind.VOID_PENDING, TransferKind.EXPIRE_PENDING}
)


class Transfer(BaseModel):
    """What a caller asks the ledger to do; immutable once accepted.

    Single and pending transfers name both accounts. Posts and voids name the pending they
    resolve and take its accounts. ``amount.currency`` is checked against the accounts; a void
    of 0 (or of at least the remaining) releases the remaining, a void of less releases that
    part and leaves the pending open.
    """

    model_config = RECORD_CONFIG

    transfer_id: str = Field(pattern=_DERIVED_ID_PATTERN)
    kind: TransferKind = TransferKind.SINGLE
    debit_account_id: str | None = None
    credit_account_id: str | None = None
    amount: Money
    pending_id: str | None = None
    # PENDING: seconds until the sweeper may expire it; None never expires.
    timeout_s: int | None = Field(default=None, gt=0)
    # POST_PENDING: how far above the remaining a part may go (the excess is booked apart).
    tolerance: MinorUnits = 0
    # POST_PENDING: this part is the last; the rest of the pending is released.
    close: bool = False
    forced: bool = False
    forced_reason: str | None = None
    # SINGLE: the transfer this one corrects (in the reverse direction).
    corrects: str | None = None
    # Set by the ledger on the transfer it books for the excess of a post over its pending.
    excess_of: str | None = None
    # SINGLE or PENDING: a second key later transfers find this one by (``lookup_link``), such
    # as a card transaction's link, which its clearing and reversal can derive but not its
    # transaction id. Unique across the ledger: a second transfer under it is refused.
    link: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        has_accounts = self.debit_account_id is not None and self.credit_account_id is not None
        if self.kind in _RESOLVING:
            if self.pending_id is None or self.debit_account_id or self.credit_account_id:
                raise ValueError("a post, void or expiry names its pending and no accounts")
        elif not has_accounts or self.pending_id is not None:
            raise ValueError("a single or pending transfer names both accounts and no pending")
        if self.timeout_s is not None and self.kind is not TransferKind.PENDING:
            raise ValueError("only a pending transfer has a timeout")
        if (self.tolerance or self.close) and self.kind is not TransferKind.POST_PENDING:
            raise ValueError("only a post of a pending has a tolerance or closes")
        if self.corrects is not None and self.kind is not TransferKind.SINGLE:
            raise ValueError("only a single transfer corrects another")
        if self.link is not None and self.kind not in (TransferKind.SINGLE, TransferKind.PENDING):
            raise ValueError("only a single or pending transfer has a link")
        if self.forced != bool(self.forced_reason):
            raise ValueError("a forced transfer says why (forced_reason), and only a forced one")
        return self

    def differing_fields(self, other: Transfer) -> tuple[str, ...]:
        """The content fields (all but the id) in which ``other`` differs, sorted."""
        mine, theirs = self.model_dump(), other.model_dump()
        return tuple(sorted(k for k in mine if k != "transfer_id" and mine[k] != theirs[k]))


class TransferStatus(StrEnum):
    CREATED = "CREATED"
    ALREADY_EXISTS = "ALREADY_EXISTS"  # a redelivery: nothing moved this time


class TransferResult(BaseModel):
    model_config = RECORD_CONFIG

    status: TransferStatus
    transfer_id: str
    # Transfers booked with this one (the excess of a post over its pending).
    linked: tuple[str, ...] = ()


class RefusalCode(StrEnum):
    EXISTS_WITH_DIFFERENT_FIELDS = "EXISTS_WITH_DIFFERENT_FIELDS"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    EXCEEDS_CREDIT_LIMIT = "EXCEEDS_CREDIT_LIMIT"
    PENDING_NOT_FOUND = "PENDING_NOT_FOUND"
    PENDING_ALREADY_RESOLVED = "PENDING_ALREADY_RESOLVED"
    PENDING_EXPIRED = "PENDING_EXPIRED"
    EXCEEDS_PENDING_AMOUNT = "EXCEEDS_PENDING_AMOUNT"
    CORRECTED_TRANSFER_NOT_FOUND = "CORRECTED_TRANSFER_NOT_FOUND"
    CORRECTION_MISMATCH = "CORRECTION_MISMATCH"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    ZERO_AMOUNT = "ZERO_AMOUNT"
    LINK_IN_USE = "LINK_IN_USE"


class TransferRefused(PermanentPostingError):  # noqa: N818 (a refusal, the outcome named)
    """The ledger refused the transfer for good; nothing was booked and the id stays unused.

    ``reason`` is the ledger's code (what ``PostingFailed`` should publish), ``fields`` the
    differing fields of an ``EXISTS_WITH_DIFFERENT_FIELDS``, ``account_id`` the account a
    refusal is about, when there is one.
    """

    def __init__(
        self,
        reason: RefusalCode,
        transfer_id: str,
        *,
        fields: tuple[str, ...] = (),
        account_id: str | None = None,
    ) -> None:
        detail = f" ({', '.join(fields)})" if fields else ""
        about = f" on account {account_id}" if account_id else ""
        super().__init__(
            f"transfer {transfer_id} refused: {reason.value}{detail}{about}",
            PostingFailureCode.REFUSED,
        )
        self.reason = reason
        self.transfer_id = transfer_id
        self.fields = fields
        self.account_id = account_id


class BookedTransfer(BaseModel):
    """A transfer as the ledger keeps it: the request, when, and the accounts it moved."""

    model_config = RECORD_CONFIG

    transfer: Transfer
    timestamp: datetime
    debit_account_id: str
    credit_account_id: str
    # What moved: for a post the part posted (the excess is its own transfer), for a void or
    # expiry the amount released.
    amount: MinorUnits
    linked: tuple[str, ...] = ()


class PendingStatus(StrEnum):
    OPEN = "OPEN"
    POSTED = "POSTED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


class PendingState(BaseModel):
    model_config = RECORD_CONFIG

    pending_id: str
    debit_account_id: str
    credit_account_id: str
    currency: CurrencyCode
    amount: MinorUnits
    remaining: MinorUnits
    status: PendingStatus = PendingStatus.OPEN
    expires_at: datetime | None = None


class Balance(BaseModel):
    """An account's balance, signed from its side (credits +, debits -)."""

    model_config = RECORD_CONFIG

    account_id: str
    currency: CurrencyCode
    posted: SignedMinorUnits = 0
    pending_debits: MinorUnits = 0
    pending_credits: MinorUnits = 0

    @property
    def available(self) -> int:
        return self.posted - self.pending_debits


class Entry(BaseModel):
    """One account's side of one transfer: how its balance's parts moved."""

    model_config = RECORD_CONFIG

    account_id: str
    counter_account_id: str
    transfer_id: str
    currency: CurrencyCode
    timestamp: datetime
    posted: SignedMinorUnits = 0
    pending_debits: SignedMinorUnits = 0
    pending_credits: SignedMinorUnits = 0


class StatementPage(BaseModel):
    """Entries of one account in time order; ``cursor`` fetches the next page (None: done)."""

    model_config = RECORD_CONFIG

    entries: tuple[Entry, ...]
    cursor: str | None = None


class TrialBalance(BaseModel):
    """Per currency: posted balances sum to 0 and pending debits equal pending credits in a
    healthy ledger. Read from balances, never the journal, between ``read_from`` and
    ``read_to``."""

    model_config = RECORD_CONFIG

    currency: CurrencyCode
    posted: SignedMinorUnits
    pending_debits: MinorUnits
    pending_credits: MinorUnits
    read_from: datetime
    read_to: datetime

    @property
    def balanced(self) -> bool:
        return self.posted == 0 and self.pending_debits == self.pending_credits
