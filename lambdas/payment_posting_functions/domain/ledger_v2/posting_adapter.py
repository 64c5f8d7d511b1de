"""The pipeline's posting port over ledger v2: one ``SINGLE`` transfer per posting.

The transfer's id is the transaction id, so the ledger's own uniqueness is the last line of
idempotency: a redelivery is ``ALREADY_POSTED``, the same id with other content is refused
as a conflict (``PostingFailed`` with ``CONFLICT``; the differing field names go to the log,
never their values to the bus). The customer is debited (or, for a refund, credited) and the
clearing account of the currency takes the other leg.

A posting for an account the ledger does not hold goes to the suspense account of the
posting's currency (issue 11): enrichment names ``SUSPENSE-EUR`` for an account it could not
find, whatever the currency, and a directory account never opened in the ledger is refused
``ACCOUNT_NOT_FOUND`` by the ledger; both end in ``SUSPENSE-<currency>``.
"""

from __future__ import annotations

from typing import Protocol

from payment_posting_functions.domain.ledger_v2.house import (
    SUSPENSE_PREFIX,
    is_house_account,
    suspense_account,
)
from payment_posting_functions.domain.ledger_v2.model import (
    RefusalCode,
    Transfer,
    TransferRefused,
    TransferResult,
    TransferStatus,
)
from payment_posting_functions.domain.posting import (
    Direction,
    PermanentPostingError,
    PostingFailureCode,
    PostingRequest,
    PostingResult,
    PostingStatus,
)

# What each refusal publishes. Pending, correction and excess refusals cannot meet a single
# transfer the adapter builds; should one ever come, it is a plain REFUSED.
FAILURE_CODES = {
    RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS: PostingFailureCode.CONFLICT,
    RefusalCode.ACCOUNT_NOT_FOUND: PostingFailureCode.ACCOUNT_NOT_FOUND,
    RefusalCode.ACCOUNT_FROZEN: PostingFailureCode.ACCOUNT_FROZEN,
    RefusalCode.ACCOUNT_CLOSED: PostingFailureCode.ACCOUNT_CLOSED,
    RefusalCode.CURRENCY_MISMATCH: PostingFailureCode.CURRENCY_MISMATCH,
    RefusalCode.EXCEEDS_CREDIT_LIMIT: PostingFailureCode.EXCEEDS_CREDIT_LIMIT,
    RefusalCode.SAME_ACCOUNT: PostingFailureCode.SAME_ACCOUNT,
    RefusalCode.ZERO_AMOUNT: PostingFailureCode.ZERO_AMOUNT,
}


_ACCOUNT_FIELDS = frozenset({"debit_account_id", "credit_account_id"})


class TransferLedger(Protocol):
    """What the adapter needs of a ledger: ``DynamoDBLedger`` or ``InMemoryLedger``."""

    def create_transfer(self, transfer: Transfer) -> TransferResult: ...


class LedgerPostingSystem:
    """``PostingSystem`` over a ledger v2 (``post`` raises ``PermanentPostingError`` with a
    ``PostingFailureCode`` for a refusal, ``TransientPostingError`` when DynamoDB stays busy)."""

    def __init__(self, ledger: TransferLedger) -> None:
        self._ledger = ledger

    def post(self, request: PostingRequest) -> PostingResult:
        currency = request.amount.currency
        account_id = request.account_id
        if account_id.startswith(SUSPENSE_PREFIX):
            account_id = suspense_account(currency)
        try:
            return self._book(request, account_id)
        except TransferRefused as refused:
            if is_house_account(account_id) or not _unknown(refused, account_id):
                raise _failure(refused) from refused
        # The customer's account is not in the ledger: its money waits in suspense.
        try:
            return self._book(request, suspense_account(currency))
        except TransferRefused as refused:
            raise _failure(refused) from refused

    def _book(self, request: PostingRequest, account_id: str) -> PostingResult:
        result = self._ledger.create_transfer(transfer_for(request, account_id))
        return PostingResult(
            status=PostingStatus.ALREADY_POSTED
            if result.status is TransferStatus.ALREADY_EXISTS
            else PostingStatus.POSTED,
            posting_id=result.transfer_id,
            account_id=None if account_id == request.account_id else account_id,
        )


def transfer_for(request: PostingRequest, account_id: str) -> Transfer:
    """The single transfer of a posting, ``account_id`` on the customer's side."""
    debit = request.direction is Direction.DEBIT
    return Transfer(
        transfer_id=request.transaction_id,
        debit_account_id=account_id if debit else request.counter_account_id,
        credit_account_id=request.counter_account_id if debit else account_id,
        amount=request.amount,
    )


def _unknown(refused: TransferRefused, account_id: str) -> bool:
    """The ledger does not hold the customer's account: not found, or (a redelivery of a
    posting that went to suspense) found booked with suspense on the customer's side."""
    if refused.reason is RefusalCode.ACCOUNT_NOT_FOUND:
        return refused.account_id == account_id
    moved = set(refused.fields)
    return refused.reason is RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS and moved <= _ACCOUNT_FIELDS


def _failure(refused: TransferRefused) -> PermanentPostingError:
    code = FAILURE_CODES.get(refused.reason, PostingFailureCode.REFUSED)
    return PermanentPostingError(str(refused), code, fields=refused.fields)
