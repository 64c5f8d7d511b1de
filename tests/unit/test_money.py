from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_posting_functions.domain.money import (
    MAX_MINOR_UNITS,
    Money,
    format_minor_units,
    minor_unit_exponent,
)


@pytest.mark.parametrize("amount", [0, 1250, Decimal("1250"), Decimal("1250.000"), MAX_MINOR_UNITS])
def test_integral_minor_units_are_accepted(amount: Any) -> None:
    money = Money(amount=amount, currency="EUR")
    assert money.amount == int(amount)
    assert type(money.amount) is int


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (12.5, "integer"),
        (12.0, "integer"),  # a float is refused even when whole: it was computed in binary
        (Decimal("12.5"), "fraction"),
        ("1250", "integer"),
        (True, "integer"),
        (-1, "greater than or equal"),
        (MAX_MINOR_UNITS + 1, "less than or equal"),
    ],
)
def test_anything_but_integral_minor_units_is_refused(amount: Any, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Money(amount=amount, currency="EUR")


@pytest.mark.parametrize(
    ("currency", "reason"),
    [("ZZZ", "not an ISO 4217"), ("XAU", "without minor units"), ("eur", "pattern")],
)
def test_currency_must_be_a_payment_currency(currency: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Money(amount=100, currency=currency)


@pytest.mark.parametrize(("currency", "exponent"), [("EUR", 2), ("JPY", 0), ("BHD", 3)])
def test_minor_unit_exponents_follow_iso_4217(currency: str, exponent: int) -> None:
    assert minor_unit_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [(1250, "EUR", "12.50 EUR"), (1250, "JPY", "1,250 JPY"), (1250, "BHD", "1.250 BHD")],
)
def test_format_places_the_decimal_point_per_currency(
    amount: int, currency: str, shown: str
) -> None:
    assert Money(amount=amount, currency=currency).format() == shown


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (-561_139, "EUR", "-5,611.39 EUR"),
        (561_139, "EUR", "5,611.39 EUR"),
        (0, "EUR", "0.00 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (123_456_789, "EUR", "1,234,567.89 EUR"),
        (-1_234_567, "JPY", "-1,234,567 JPY"),
        (0, "JPY", "0 JPY"),
        (-1_234_567, "BHD", "-1,234.567 BHD"),
        (7, "KWD", "0.007 KWD"),
        (-1234, "XYZ", "-1,234 XYZ (minor units)"),
    ],
)
def test_amounts_show_sign_thousands_and_the_currencys_decimals(
    minor: int, currency: str, shown: str
) -> None:
    assert format_minor_units(minor, currency) == shown
