"""Receiving accounts, as the enrichment step looks them up.

Each account carries what the accounting rules need: its IBAN and type, whether it has holds,
and the bank's suspense and head-office accounts it posts against. The sample directory
matches the sample source's account ids, so the demo finds most accounts and not all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SUSPENSE_ACCOUNT_ID = "SUSPENSE-EUR"
HEAD_OFFICE_ACCOUNT_ID = "HEAD-OFFICE-EUR"
_SAMPLE_BANK_CODE = "50010517"  # a German bank code (BLZ), for realistic sample IBANs


class AccountType(StrEnum):
    CURRENT = "CURRENT"
    SAVINGS = "SAVINGS"
    CREDIT_CARD = "CREDIT_CARD"


class Account(BaseModel):
    """A receiving account as the accounts table stores it."""

    # Errors never echo input: an account carries an IBAN.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,
        # Validators are built on first use, not at import (docs/adr/0024).
        defer_build=True,
    )

    account_id: str
    iban: str = Field(pattern=r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
    account_type: AccountType
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    holds: bool = False
    suspense_account_id: str = SUSPENSE_ACCOUNT_ID
    head_office_account_id: str = HEAD_OFFICE_ACCOUNT_ID
    tax_category: str = "STANDARD"

    def to_item(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


def iban(country: str, bank_code: str, account_number: str) -> str:
    """An IBAN with its check digits (ISO 13616: mod 97 of the rearranged digits is 1)."""
    bban = f"{bank_code}{account_number}"
    rearranged = f"{bban}{country}00"
    digits = "".join(str(int(char, 36)) for char in rearranged)
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


def iban_is_valid(value: str) -> bool:
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def sample_accounts() -> list[Account]:
    """The sample directory: every sample account id, every tenth one with holds."""
    # Imported here: only the sample source and the local runtime build the directory, and the
    # generator is no part of the enrichment path that imports this module.
    from payment_posting_functions.domain.generator import SAMPLE_ACCOUNT_IDS

    types = list(AccountType)
    return [
        Account(
            account_id=account_id,
            iban=iban("DE", _SAMPLE_BANK_CODE, f"{number:010d}"),
            account_type=types[number % len(types)],
            currency="EUR",
            holds=number % 10 == 0,
            tax_category="EXEMPT" if number % 7 == 0 else "STANDARD",
        )
        for number, account_id in enumerate(SAMPLE_ACCOUNT_IDS, start=1)
    ]
