from __future__ import annotations

import pytest
from pydantic import ValidationError

from payment_posting_functions.domain.accounts import (
    SUSPENSE_ACCOUNT_ID,
    Account,
    AccountType,
    iban,
    iban_is_valid,
    sample_accounts,
)
from payment_posting_functions.domain.enrichment import enrich, fx_check
from payment_posting_functions.domain.generator import SAMPLE_ACCOUNT_IDS
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item


def tx(**overrides: object) -> AuthorizedTransaction:
    return AuthorizedTransaction.model_validate(valid_item(**overrides))


def test_iban_check_digits_follow_iso_13616() -> None:
    assert iban("GB", "NWBK60161331", "926819") == "GB29NWBK60161331926819"
    assert iban_is_valid("GB29NWBK60161331926819")
    assert not iban_is_valid("GB28NWBK60161331926819")


def test_sample_directory_covers_the_generators_accounts_with_some_holds() -> None:
    accounts = sample_accounts()
    assert [a.account_id for a in accounts] == list(SAMPLE_ACCOUNT_IDS)
    assert all(iban_is_valid(a.iban) for a in accounts)
    assert sum(a.holds for a in accounts) == 5
    assert {a.account_type for a in accounts} == set(AccountType)


def test_a_known_account_is_enriched_with_its_context() -> None:
    account = sample_accounts()[9]  # ACC-0010, which has holds
    enrichment = enrich(tx(accountId=account.account_id), account)
    assert enrichment.account_found
    assert enrichment.posting_account_id == account.account_id
    assert enrichment.iban == account.iban
    assert enrichment.holds is True
    assert enrichment.tax_category == account.tax_category


def test_an_unknown_account_goes_to_suspense_not_to_an_error() -> None:
    enrichment = enrich(tx(accountId="ACC-X999999"), None)
    assert not enrichment.account_found
    assert enrichment.posting_account_id == SUSPENSE_ACCOUNT_ID
    assert enrichment.iban is None


@pytest.mark.parametrize(
    ("paid", "billed", "rate", "expected", "deviation"),
    [
        (
            {"amount": 1250, "currency": "USD"},
            {"amount": 1152, "currency": "EUR"},
            "0.9215",
            1152,
            0,
        ),
        (
            {"amount": 8170, "currency": "JPY"},
            {"amount": 5000, "currency": "EUR"},
            "0.00612",
            5000,
            0,
        ),
        ({"amount": 1000, "currency": "EUR"}, {"amount": 1100, "currency": "EUR"}, "1", 1000, 1000),
        ({"amount": 1000, "currency": "BHD"}, {"amount": 243, "currency": "EUR"}, "2.43", 243, 0),
    ],
)
def test_fx_check_compares_billing_with_amount_times_rate(
    paid: dict[str, object], billed: dict[str, object], rate: str, expected: int, deviation: int
) -> None:
    check = fx_check(tx(transactionAmount=paid, billingAmount=billed, conversionRate=rate))
    assert check.expected_billing_amount == expected
    assert check.deviation_bps == deviation


def test_an_invalid_account_error_never_echoes_its_values() -> None:
    iban_like = "de89370400440532013000"  # lower case: refused by the IBAN pattern
    with pytest.raises(ValidationError) as refused:
        Account.model_validate(
            {"accountId": "ACC-1", "iban": iban_like, "accountType": "CURRENT", "currency": "EUR"}
        )
    assert "iban" in str(refused.value)
    assert iban_like not in str(refused.value)


def test_an_invalid_posting_request_error_never_echoes_its_values() -> None:
    from payment_posting_functions.domain.posting import PostingRequest

    with pytest.raises(ValidationError) as refused:
        PostingRequest.model_validate(
            {"transactionId": "tx-1", "accountId": ["DE89370400440532013000"],
             "counterAccountId": "CLEARING-EUR", "amount": {"amount": 1, "currency": "EUR"},
             "direction": "DEBIT"}
        )  # fmt: skip
    assert "accountId" in str(refused.value)
    assert "DE89370400440532013000" not in str(refused.value)
