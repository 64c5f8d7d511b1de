"""The posting port: what the pipeline asks of a posting system, whichever it is.

Two adapters implement it: the built-in double-entry ledger on DynamoDB
(``domain.ledger_v2.posting_adapter``) and an HTTP client for an external core-banking API
(``domain.http_posting``). Both are idempotent by transaction id: posting the same
transaction again posts nothing and reports that it was already posted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import Money


class Direction(StrEnum):
    """From the customer's side: a purchase or withdrawal debits them, a refund credits."""

    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class PostingRequest(BaseModel):
    """Move ``amount`` between the customer (or suspense) account and the counter account."""

    model_config = RECORD_CONFIG

    transaction_id: str
    account_id: str  # the customer's account, or suspense when it is unknown
    counter_account_id: str  # settlement / clearing account the other leg goes to
    amount: Money  # in the billing currency: what the customer's account moves by
    direction: Direction


class PostingStatus(StrEnum):
    POSTED = "POSTED"
    ALREADY_POSTED = "ALREADY_POSTED"  # a repeat: nothing moved this time


class PostingResult(BaseModel):
    model_config = RECORD_CONFIG

    status: PostingStatus
    posting_id: str
    # The account the posting system booked when it is not the one asked for: the suspense
    # account of the currency, for an account the ledger does not hold. None: as asked.
    account_id: str | None = None


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
}


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
