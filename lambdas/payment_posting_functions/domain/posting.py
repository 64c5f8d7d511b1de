"""The posting port: what the pipeline asks of a posting system, whichever it is.

Two adapters implement it: the built-in double-entry ledger on DynamoDB
(``domain.ledger_v2.posting_adapter``) and an HTTP client for an external core-banking API
(``domain.http_posting``). Both are idempotent by transaction id: posting the same
transaction again posts nothing and reports that it was already posted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from payment_posting_functions.domain.card_message import MessageClass
from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import MinorUnits, Money


class Direction(StrEnum):
    """From the customer's side: a purchase or withdrawal debits them, a refund credits."""

    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class PostingRequest(BaseModel):
    """Move ``amount`` between the customer (or suspense) account and the counter account,
    as the message's class says: an authorization holds it, a clearing posts the hold of its
    link, a financial message posts it, a reversal undoes its original (by the link).

    A posting system over HTTP receives all of it; the built-in ledger books it as two-phase
    transfers (``domain.ledger_v2.posting_adapter``).
    """

    model_config = RECORD_CONFIG

    transaction_id: str
    account_id: str  # the customer's account, or suspense when it is unknown
    counter_account_id: str  # settlement / clearing account the other leg goes to
    amount: Money  # in the billing currency: what the customer's account moves by
    direction: Direction
    message_class: MessageClass = MessageClass.FINANCIAL
    # The card transaction's link (``domain.card_message.link_id``): the id of the hold an
    # authorization places or a clearing settles, of a financial message's posting, and, for
    # a reversal, of the original it undoes. None: the transaction id is the posting's id.
    link_id: str | None = None
    # A refund's original, where the record names one: linked, never moved.
    original_link_id: str | None = None
    # An advice: posted even where a balance check would refuse it, and why.
    forced_reason: str | None = None
    # An authorization: how long its hold waits for a clearing before it is released.
    hold_seconds: int | None = None
    # A clearing: how far above its hold it may post, in basis points of the authorized
    # amount (a tip), and whether it is the last one (a partial shipment is not: the hold
    # stays open for the next).
    tolerance_bps: int = Field(default=0, ge=0, le=10_000)
    final: bool = True
    # The original of a clearing or a reversal has been waited for long enough: a clearing
    # without its authorization is posted (forced), a reversal without its original fails.
    # Not part of what is posted: the same request, later in its retries.
    original_overdue: bool = False


class PostingStatus(StrEnum):
    POSTED = "POSTED"
    ALREADY_POSTED = "ALREADY_POSTED"  # a repeat: nothing moved this time


class PostingOutcome(StrEnum):
    """What the posting did, whichever event it ends in."""

    POSTED = "POSTED"  # posted money moved (a financial message, a forced clearing)
    HELD = "HELD"  # a hold placed: available dropped, posted did not
    CLEARED = "CLEARED"  # a clearing posted (part of) its hold
    VOIDED = "VOIDED"  # a reversal released (part of) a hold
    CORRECTED = "CORRECTED"  # a reversal booked a transfer back for what was posted
    REVERSED = "REVERSED"  # a reversal an external core system applied its own way


class PostingResult(BaseModel):
    model_config = RECORD_CONFIG

    status: PostingStatus
    posting_id: str
    # The account the posting system booked when it is not the one asked for: the suspense
    # account of the currency, for an account the ledger does not hold. None: as asked.
    account_id: str | None = None
    outcome: PostingOutcome = PostingOutcome.POSTED
    # The hold placed, cleared or voided, or the posting corrected (its ledger id).
    pending_id: str | None = None
    forced_reason: str | None = None
    # A clearing above its hold (within the tolerance, or forced beyond it): the part above.
    excess: MinorUnits = 0
    # What a reversal undid, when less than asked (all the hold had left); None: as asked.
    amount: MinorUnits | None = None
    # A reversal of less than its original's amount.
    partial: bool = False
    # A refund's original, found in the ledger.
    original_id: str | None = None


class TransientPostingError(Exception):
    """Try again later (throttled, unavailable, timed out): the message goes back to the queue."""


class PostingFailureCode(StrEnum):
    """Why a posting was refused for good: what ``PostingFailed`` publishes, never the
    posting system's own words (a core system's error text may quote an IBAN or a name)."""

    ZERO_AMOUNT = "ZERO_AMOUNT"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    REFUSED_BY_CORE = "REFUSED_BY_CORE"
    REFUSED = "REFUSED"
    # The built-in ledger's refusals (ledger v2's RefusalCode, as a posting can meet them).
    CONFLICT = "CONFLICT"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    EXCEEDS_CREDIT_LIMIT = "EXCEEDS_CREDIT_LIMIT"
    # The card lifecycle's.
    ORIGINAL_NOT_FOUND = "ORIGINAL_NOT_FOUND"
    ORIGINAL_ALREADY_SETTLED = "ORIGINAL_ALREADY_SETTLED"
    NOTHING_TO_POST = "NOTHING_TO_POST"
    LINK_IN_USE = "LINK_IN_USE"


# The one text published beside each code: fixed, so no input can reach the bus through it.
FAILURE_REASONS = {
    PostingFailureCode.ZERO_AMOUNT: "a posting of zero moves no money",
    PostingFailureCode.SAME_ACCOUNT: "the same account is on both legs",
    PostingFailureCode.REFUSED_BY_CORE: "the core banking system refused the posting",
    PostingFailureCode.REFUSED: "the posting system refused the posting",
    PostingFailureCode.CONFLICT: "the transaction id was already posted with other content",
    PostingFailureCode.ACCOUNT_NOT_FOUND: "an account of the posting is not open in the ledger",
    PostingFailureCode.ACCOUNT_FROZEN: "the account is frozen and takes no new debits",
    PostingFailureCode.ACCOUNT_CLOSED: "the account is closed",
    PostingFailureCode.CURRENCY_MISMATCH: "the posting's currency is not the account's",
    PostingFailureCode.EXCEEDS_CREDIT_LIMIT: "the posting would exceed the account's credit limit",
    PostingFailureCode.ORIGINAL_NOT_FOUND: "the reversal's original is not in the ledger",
    PostingFailureCode.ORIGINAL_ALREADY_SETTLED: (
        "the original was already cleared, reversed or expired: a refund undoes a cleared one"
    ),
    PostingFailureCode.NOTHING_TO_POST: "an inquiry moves no money",
    PostingFailureCode.LINK_IN_USE: (
        "a message of the same card transaction (card, RRN, auth code) was already posted"
    ),
}


class OriginalNotYetPosted(TransientPostingError):  # noqa: N818 (a state, named)
    """A reversal (or a clearing) whose original is not in the ledger yet: the pipeline does
    not keep the order in which messages were sent, so it is tried again; the caller decides
    when waiting has lasted long enough (``settle_missing_original``)."""


class PermanentPostingError(Exception):
    """The posting system refused the posting for good: the transaction ends PostingFailed.

    The message is for the caller's own diagnosis; only ``code`` is published. ``fields``
    names what differs in a ``CONFLICT`` (field names only, never values): for the log.
    """

    def __init__(
        self,
        message: str,
        code: PostingFailureCode = PostingFailureCode.REFUSED,
        *,
        fields: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.code = code
        self.fields = fields


class PostingSystem(Protocol):
    def post(self, request: PostingRequest) -> PostingResult:
        """Post once; a repeat returns ALREADY_POSTED.

        Raises TransientPostingError or PermanentPostingError.
        """
        ...
