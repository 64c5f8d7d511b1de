"""From an approved transaction to the posting the ledger or core system should make."""

from __future__ import annotations

from payment_posting_functions.domain.events import TransactionApproved
from payment_posting_functions.domain.posting import Direction, PostingRequest

# ISO 8583 processing codes whose first two digits mean money back to the cardholder.
_CREDIT_PROCESSING_CODES = ("20",)  # refund / return


def clearing_account(currency: str) -> str:
    """The scheme clearing account the other leg of every card posting goes to."""
    return f"CLEARING-{currency}"


def posting_request_for(approved: TransactionApproved) -> PostingRequest:
    """Debit (or, for a refund, credit) the posting account by the billing amount.

    The posting account is the customer's, or suspense when enrichment found no account;
    the counter leg goes to the clearing account of the billing currency.
    """
    transaction = approved.transaction
    billed = transaction.billing_amount
    credit = transaction.processing_code[:2] in _CREDIT_PROCESSING_CODES
    return PostingRequest(
        transaction_id=approved.transaction_id,
        account_id=approved.enrichment.posting_account_id,
        counter_account_id=clearing_account(billed.currency),
        amount=billed,
        direction=Direction.CREDIT if credit else Direction.DEBIT,
    )
