"""The posting port: what the pipeline asks of a posting system, whichever it is.

Two adapters implement it: the built-in double-entry ledger on DynamoDB
(``payments.ledger``) and an HTTP client for an external core-banking API
(``payments.http_posting``). Both are idempotent by transaction id: posting the same
transaction again posts nothing and reports that it was already posted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from payments.money import Money


class Direction(StrEnum):
    """From the customer's side: a purchase or withdrawal debits them, a refund credits."""

    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class PostingRequest(BaseModel):
    """Move ``amount`` between the customer (or suspense) account and the counter account."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )

    transaction_id: str
    account_id: str  # the customer's account, or suspense when it is unknown
    counter_account_id: str  # settlement / clearing account the other leg goes to
    amount: Money  # in the billing currency: what the customer's account moves by
    direction: Direction


class PostingStatus(StrEnum):
    POSTED = "POSTED"
    ALREADY_POSTED = "ALREADY_POSTED"  # a repeat: nothing moved this time


class PostingResult(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )

    status: PostingStatus
    posting_id: str


class TransientPostingError(Exception):
    """Try again later (throttled, unavailable, timed out): the message goes back to the queue."""


class PermanentPostingError(Exception):
    """The posting system refused the posting for good: the transaction ends PostingFailed."""


class PostingSystem(Protocol):
    def post(self, request: PostingRequest) -> PostingResult:
        """Post once; a repeat returns ALREADY_POSTED.

        Raises TransientPostingError or PermanentPostingError.
        """
        ...
