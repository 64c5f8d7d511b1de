"""Records for tests: one canonical valid item, varied by keyword."""

from __future__ import annotations

from typing import Any

TEST_PAN = "4111111111111111"


def valid_item(**overrides: Any) -> dict[str, Any]:
    """A well-formed table item (camelCase, as the authorization system writes it): a
    single-message purchase (0200, debit PIN), which posts at once."""
    item: dict[str, Any] = {
        "transactionId": "3f1c2b9e-6a1d-4c55-9a7e-1d2f3a4b5c6d",
        "mti": "0200",
        "panToken": "tok_0123456789abcdef01234567",
        "processingCode": "000000",
        "transactionAmount": {"amount": 1250, "currency": "USD"},
        "billingAmount": {"amount": 1152, "currency": "EUR"},
        "conversionRate": "0.92150000",
        "stan": "123456",
        "rrn": "123456789012",
        "authCode": "A1B2C3",
        "mcc": "5411",
        "posEntryMode": "051",
        "acquirerCountry": "US",
        "issuerCountry": "DE",
        "terminalId": "T1234567",
        "merchantId": "M12345678901234",
        "accountId": "ACC-0001",
        "transmittedAt": "2026-11-24T10:15:30.250000+00:00",
    }
    item.update(overrides)
    return item
