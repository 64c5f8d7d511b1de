from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_posting_functions.domain.pan import REDACTION, contains_card_number
from payment_posting_functions.domain.transaction import (
    AuthorizedTransaction,
    describe_validation_error,
)
from tests.factories import TEST_PAN, valid_item


def reason_for(item: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        AuthorizedTransaction.model_validate(item)
    return describe_validation_error(caught.value)


def test_a_well_formed_record_parses_with_exact_types() -> None:
    tx = AuthorizedTransaction.model_validate(valid_item())
    assert tx.transaction_amount.amount == 1250
    assert tx.billing_amount.currency == "EUR"
    assert tx.conversion_rate == Decimal("0.92150000")
    assert tx.transmitted_at == datetime(2026, 11, 24, 10, 15, 30, 250000, tzinfo=UTC)
    assert tx.is_foreign


def test_times_are_normalised_to_utc() -> None:
    tx = AuthorizedTransaction.model_validate(valid_item(transmittedAt="2026-11-24T11:15:30+01:00"))
    assert tx.transmitted_at == datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)


def test_a_time_without_zone_is_refused() -> None:
    assert "transmittedAt" in reason_for(valid_item(transmittedAt="2026-11-24T10:15:30"))


def test_issuer_country_may_be_missing_for_the_rules_to_reject() -> None:
    item = valid_item()
    del item["issuerCountry"]
    assert AuthorizedTransaction.model_validate(item).issuer_country is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("panToken", TEST_PAN),
        ("panToken", f"tok_{TEST_PAN}"),
        ("transactionId", TEST_PAN),
        ("transactionId", f"tx_{TEST_PAN}"),
        ("transactionId", f"{TEST_PAN}-a"),
        ("accountId", TEST_PAN),
        ("accountId", f"ACC-{TEST_PAN}"),
        ("merchantId", "378282246310005"),
        ("merchantId", "M36227206271667"),
    ],
)
def test_a_card_number_anywhere_in_a_token_or_id_is_refused_and_never_echoed(
    field: str, value: str
) -> None:
    item = valid_item(**{field: value})
    with pytest.raises(ValidationError) as caught:
        AuthorizedTransaction.model_validate(item)
    assert not contains_card_number(str(caught.value))
    reason = describe_validation_error(caught.value)
    assert not contains_card_number(reason)
    assert f"{field}: contains what looks like a card number" in reason


# Card numbers shaped to fit each kind of field: a token, an id, a 15-character merchant id, the
# shortest card length.
CARD_SHAPED = (TEST_PAN, f"tok_{TEST_PAN}", f"ACC-{TEST_PAN}", "378282246310005", "4222222222222")


@pytest.mark.parametrize("field", sorted(valid_item()))
def test_no_field_accepts_a_card_number(field: str) -> None:
    """Every field refuses them: by the card-number check, or by a format too short to hold one.

    Enumerates the record's fields, so a field added later without the check fails here.
    """
    for value in CARD_SHAPED:
        with pytest.raises(ValidationError) as caught:
            AuthorizedTransaction.model_validate(valid_item(**{field: value}))
        assert field in describe_validation_error(caught.value)


def test_a_spaced_clear_pan_is_refused_too() -> None:
    assert "panToken" in reason_for(valid_item(panToken="4111 1111 1111 1111"))


def test_reasons_name_every_bad_field_but_no_value() -> None:
    item = valid_item(stan="12x456", mcc="54A1", acquirerCountry="XX")
    del item["rrn"]
    reason = reason_for(item)
    for field in ("stan", "mcc", "acquirerCountry", "rrn: Field required"):
        assert field in reason
    for value in ("12x456", "54A1", "'XX'"):
        assert value not in reason


def test_unexpected_fields_are_refused_by_name() -> None:
    reason = reason_for(valid_item(cardNumber=TEST_PAN))
    assert "cardNumber: Extra inputs are not permitted" in reason
    assert TEST_PAN not in reason


def test_a_field_name_holding_a_pan_is_redacted_in_the_reason() -> None:
    reason = reason_for(valid_item(**{TEST_PAN: "x"}))
    assert TEST_PAN not in reason
    assert REDACTION in reason


@pytest.mark.parametrize(
    ("rate", "reason"), [(0.9215, "binary float"), ("0", "greater than 0"), ("abc", "decimal")]
)
def test_conversion_rate_is_an_exact_positive_decimal(rate: Any, reason: str) -> None:
    assert reason in reason_for(valid_item(conversionRate=rate))


def test_to_item_round_trips_without_floats() -> None:
    tx = AuthorizedTransaction.model_validate(valid_item())
    item = tx.to_item()
    assert item["conversionRate"] == "0.92150000"
    assert item["transactionAmount"] == {"amount": 1250, "currency": "USD"}
    assert AuthorizedTransaction.model_validate(item) == tx
