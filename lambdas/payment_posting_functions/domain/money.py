"""Money as integer minor units with an ISO 4217 currency; never floats."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

# ISO 8583 DE 4 and DE 6 carry twelve digits of minor units.
MAX_MINOR_UNITS = 999_999_999_999


@cache
def minor_unit_exponent(code: str) -> int:
    """Number of decimal places of a currency (2 for EUR, 0 for JPY, 3 for BHD).

    Raises ValueError for a code that is not an ISO 4217 currency with minor units (funds,
    precious metals and testing codes have none and cannot carry a payment amount).
    """
    # Imported on first use: loading the ISO 4217 table is a noticeable share of a cold start
    # (docs/adr/0024-lazy-imports-on-the-payment-path.md); the result is cached per code.
    import iso4217

    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        raise ValueError("is not an ISO 4217 currency code") from None
    if exponent is None:
        raise ValueError("is an ISO 4217 code without minor units, not a payment currency")
    return int(exponent)


def _check_currency(code: str) -> str:
    minor_unit_exponent(code)
    return code


def integral_minor_units(value: Any) -> Any:
    # DynamoDB hands numbers over as Decimal and JSON as int; anything else (float, str, bool)
    # is refused rather than coerced, so a rounding error can never become money.
    if isinstance(value, bool):
        raise ValueError("must be an integer number of minor units")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError("must be an integer number of minor units, not a fraction")
        return int(value)
    if not isinstance(value, int):
        raise ValueError("must be an integer number of minor units")
    return value


CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(_check_currency)]
MinorUnits = Annotated[int, BeforeValidator(integral_minor_units), Field(ge=0, le=MAX_MINOR_UNITS)]
# Balances and ledger legs may be negative; the same rule on what counts as an integer holds.
SignedMinorUnits = Annotated[int, BeforeValidator(integral_minor_units)]


class Money(BaseModel):
    """An amount in the currency's minor units (cents for EUR, yen for JPY)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, defer_build=True
    )

    amount: MinorUnits
    currency: CurrencyCode

    def format(self) -> str:
        """Human-readable amount, e.g. ``1,012.34 EUR``; for display only, never for arithmetic."""
        return format_minor_units(self.amount, self.currency)


def format_minor_units(minor: int, currency: str) -> str:
    """How every amount is shown to a person: ``-5,611.39 EUR``, ``1,250 JPY``, ``1.250 BHD``.

    A minus sign for a negative amount (none for zero or more), thousands separated by commas,
    as many decimals as the currency's minor unit exponent (ISO 4217), the code after. Exact:
    the minor units are shifted as a Decimal, never through a float. A code that is not a
    payment currency (a damaged ledger file, say) shows its minor units unshifted, marked as
    such, rather than guessing a decimal point.
    """
    units = int(minor)
    try:
        exponent = minor_unit_exponent(currency)
    except ValueError:
        return f"{units:,} {currency} (minor units)"
    major = Decimal(abs(units)).scaleb(-exponent)
    return f"{'-' if units < 0 else ''}{major:,.{exponent}f} {currency}"
