from __future__ import annotations

import pytest

from payments.pan import PAN_REDACTION, looks_like_pan, luhn_valid, redact_pans


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "79927398713"],
)
def test_known_numbers_pass_luhn(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "", "4111-1111"])
def test_wrong_check_digit_or_non_digits_fail_luhn(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4111111111111111", True),
        ("4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        ("4111111111111112", False),  # a format-preserving token that fails Luhn on purpose
        ("79927398713", False),  # Luhn-valid but 11 digits: too short for a card
        ("tok_4111111111111111", False),
    ],
)
def test_looks_like_pan(value: str, expected: bool) -> None:
    assert looks_like_pan(value) is expected


def test_redaction_removes_pans_and_keeps_other_numbers() -> None:
    text = "card 4111 1111 1111 1111 stan 123456 rrn 123456789012 amount 1250"
    redacted = redact_pans(text)
    assert "4111" not in redacted
    assert PAN_REDACTION in redacted
    assert "stan 123456 rrn 123456789012 amount 1250" in redacted
