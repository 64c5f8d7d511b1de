"""Enrichment: the context the business rules need, added to an authorized transaction.

An unknown account is not an error that loses the transaction: it is enriched toward the
suspense account and marked so, and the rules and posting treat it accordingly.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from pydantic import BaseModel

from payment_posting_functions.domain.accounts import (
    HEAD_OFFICE_ACCOUNT_ID,
    SUSPENSE_ACCOUNT_ID,
    Account,
    AccountType,
)
from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import minor_unit_exponent
from payment_posting_functions.domain.transaction import AuthorizedTransaction


class _Model(BaseModel):
    model_config = RECORD_CONFIG


class FxCheck(_Model):
    """Does the billing amount follow from the transaction amount and the conversion rate?"""

    expected_billing_amount: int
    deviation_bps: int  # |billed - expected| in basis points of expected


class Enrichment(_Model):
    """What enrichment added: the posting account and its context, and the FX check."""

    account_found: bool
    posting_account_id: str  # the account itself, or suspense when it is unknown
    # The account's currency: the rules engine rejects a billing amount in another one.
    account_currency: str | None = None
    iban: str | None = None
    account_type: AccountType | None = None
    holds: bool = False
    suspense_account_id: str = SUSPENSE_ACCOUNT_ID
    head_office_account_id: str = HEAD_OFFICE_ACCOUNT_ID
    tax_category: str | None = None
    fx: FxCheck


class AccountDirectory(Protocol):
    def find(self, account_id: str) -> Account | None: ...


def fx_check(transaction: AuthorizedTransaction) -> FxCheck:
    """Expected billing amount in billing minor units, and how far the actual one is off."""
    paid = transaction.transaction_amount
    billed = transaction.billing_amount
    major = Decimal(paid.amount).scaleb(-minor_unit_exponent(paid.currency))
    expected_major = major * transaction.conversion_rate
    expected = int(
        expected_major.scaleb(minor_unit_exponent(billed.currency)).quantize(
            Decimal(1), rounding=ROUND_HALF_EVEN
        )
    )
    difference = abs(billed.amount - expected)
    deviation = 0 if difference == 0 else (difference * 10_000) // max(expected, 1)
    return FxCheck(expected_billing_amount=expected, deviation_bps=deviation)


def enrich(transaction: AuthorizedTransaction, account: Account | None) -> Enrichment:
    fx = fx_check(transaction)
    if account is None:
        return Enrichment(account_found=False, posting_account_id=SUSPENSE_ACCOUNT_ID, fx=fx)
    return Enrichment(
        account_found=True,
        posting_account_id=account.account_id,
        account_currency=account.currency,
        iban=account.iban,
        account_type=account.account_type,
        holds=account.holds,
        suspense_account_id=account.suspense_account_id,
        head_office_account_id=account.head_office_account_id,
        tax_category=account.tax_category,
        fx=fx,
    )
