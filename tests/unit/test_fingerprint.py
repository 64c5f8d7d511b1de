from __future__ import annotations

import re

import pytest

from payment_posting_functions.domain.fingerprint import FINGERPRINT_VERSION, fingerprint
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

BASE = AuthorizedTransaction.model_validate(valid_item())


def test_a_retransmission_has_the_same_fingerprint() -> None:
    again = AuthorizedTransaction.model_validate(
        valid_item(
            transactionId="9d9d9d9d-0000-4000-8000-000000000001",
            authCode="ZZ9999",  # issuers may give a retried request another code
            transmittedAt="2026-11-24T10:16:00+00:00",
            accountId="ACC-0002",
        )
    )
    assert fingerprint(again) == fingerprint(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"panToken": "tok_ffffffffffffffffffffffff"},
        {"stan": "654321"},
        {"rrn": "210987654321"},
        {"terminalId": "T7654321"},
        {"transactionAmount": {"amount": 1251, "currency": "USD"}},
        {"transactionAmount": {"amount": 1250, "currency": "GBP"}},
    ],
)
def test_each_identifying_field_changes_the_fingerprint(change: dict[str, object]) -> None:
    other = AuthorizedTransaction.model_validate(valid_item(**change))
    assert fingerprint(other) != fingerprint(BASE)


def test_fingerprint_is_versioned_and_holds_no_field_value() -> None:
    digest = fingerprint(BASE)
    assert digest.startswith(f"{FINGERPRINT_VERSION}:")
    assert BASE.pan_token not in digest
    # SHA-256 in lowercase base32 without padding: 52 characters, the only digits 2-7.
    assert re.fullmatch(r"[a-z2-7]{52}", digest.split(":")[1])
