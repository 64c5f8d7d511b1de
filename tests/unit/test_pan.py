"""The one definition of "looks like a card number", and what it must leave alone."""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payment_posting_functions.domain.fingerprint import fingerprint
from payment_posting_functions.domain.pan import (
    REDACTION,
    card_number_spans,
    contains_card_number,
    is_card_number,
    luhn_valid,
    redact_card_numbers,
)
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

# Test numbers the schemes publish, one per scheme and length the definition covers.
SCHEME_TEST_NUMBERS = [
    "4111111111111111",  # Visa 16
    "4222222222222",  # Visa 13
    "4000000000000000006",  # Visa 19
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "36227206271667",  # Diners Club 14
    "6200000000000005",  # UnionPay
    "6759649826438453",  # Maestro
    "2200000000000004",  # Mir (Luhn-valid with the 2200 prefix)
]


def _with_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable: one check digit always completes a Luhn number")


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "79927398713"],
)
def test_known_numbers_pass_luhn(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "", "4111-1111"])
def test_wrong_check_digit_or_non_digits_fail_luhn(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("number", SCHEME_TEST_NUMBERS)
def test_every_scheme_test_number_is_a_card_number(number: str) -> None:
    assert is_card_number(number)


@pytest.mark.parametrize(
    ("digits", "why"),
    [
        ("4111111111111112", "fails Luhn: a format-preserving vault token"),
        ("79927398713", "Luhn-valid but 11 digits"),
        (_with_check_digit("111111111111111"), "no scheme issues numbers starting with 1"),
        (_with_check_digit("378282246310005"), "American Express issues 15 digits, not 16"),
        (_with_check_digit("55555555555544"), "Mastercard issues 16 digits, not 15"),
        (_with_check_digit("4" * 19 + "1"), "20 digits: longer than any card number"),
        ("1764531147000", "an epoch timestamp in milliseconds"),
    ],
)
def test_numbers_no_scheme_issues_are_not_card_numbers(digits: str, why: str) -> None:
    assert not is_card_number(digits), why


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "tok_4111111111111111",
        "tx_4111111111111111",
        "M4111111111111111",
        "4111111111111111-x",
        "ACC4111111111111111Z",
        "card 4111 1111 1111 1111 expires",
        "card4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        "4111 1111 1111 1111 2029",  # a card number followed by another group
        "prefix:36227206271667:suffix",
    ],
)
def test_a_card_number_anywhere_in_the_text_is_found(text: str) -> None:
    assert contains_card_number(text)
    redacted = redact_card_numbers(text)
    assert REDACTION in redacted
    assert not contains_card_number(redacted)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("tok_4111111111111112", "a token that fails Luhn"),
        ("DE89370400440532013000", "an IBAN: its digit run is 20 long"),
        ("GB29NWBK60161331926819", "an IBAN whose digits start like Maestro but are 14 long"),
        ("2026-11-30T19:32:27.123456+00:00", "a timestamp"),
        ("1764531147000", "epoch milliseconds"),
        ("stan 123456 rrn 123456789012 terminal 12345678", "fixed-format fields"),
        ("x4111-1111-1111-1111y", "dashed groups glued to letters read as an id, as in UUIDs"),
        ("4111-1111 1111-1111", "groups with mixed separators are not a printed card number"),
        ("300000000000000499659", "a DynamoDB stream sequence number (21 digits)"),
    ],
)
def test_what_is_not_a_card_number_is_left_alone(text: str, why: str) -> None:
    assert card_number_spans(text) == [], why
    assert redact_card_numbers(text) == text


def test_redaction_keeps_the_text_around_each_number() -> None:
    text = "a 4111 1111 1111 1111 and 5555555555554444, stan 123456"
    assert redact_card_numbers(text) == f"a {REDACTION} and {REDACTION}, stan 123456"


@given(st.text())
def test_redacted_text_never_contains_a_card_number(text: str) -> None:
    assert not contains_card_number(redact_card_numbers(text))


@given(st.sampled_from(SCHEME_TEST_NUMBERS), st.text(), st.text())
def test_a_card_number_between_any_text_is_found(number: str, before: str, after: str) -> None:
    # Digits glued on either side make a different (longer) number: the run is what counts.
    before = before.rstrip("0123456789")
    after = after.lstrip("0123456789")
    assert contains_card_number(before + number + after)


class TestQuietOnWhatThePipelineEmits:
    """The detector is only useful if it never cries wolf on genuine traffic."""

    SAMPLES = 20_000

    def test_uuids(self) -> None:
        rnd = random.Random(7)
        values = (str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(self.SAMPLES))
        assert [v for v in values if contains_card_number(v)] == []

    def test_base32_digests(self) -> None:
        rnd = random.Random(11)
        values = (
            base64.b32encode(rnd.randbytes(32)).decode().lower().rstrip("=")
            for _ in range(self.SAMPLES)
        )
        assert [v for v in values if contains_card_number(v)] == []

    def test_fingerprints(self) -> None:
        rnd = random.Random(13)
        values = (
            fingerprint(
                AuthorizedTransaction.model_validate(
                    valid_item(
                        stan=f"{rnd.randrange(10**6):06d}", rrn=f"{rnd.randrange(10**12):012d}"
                    )
                )
            )
            for _ in range(2_000)
        )
        assert [v for v in values if contains_card_number(v)] == []

    def test_timestamps(self) -> None:
        rnd = random.Random(17)
        for _ in range(self.SAMPLES):
            moment = datetime.fromtimestamp(rnd.uniform(0, 4e9), UTC)
            for text in (moment.isoformat(), str(int(moment.timestamp() * 1000))):
                assert not contains_card_number(text), text
