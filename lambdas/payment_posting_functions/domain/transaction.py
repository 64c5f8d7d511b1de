"""The authorized transaction record, as the authorization system writes it to the table.

Field names follow what card authorizations carry (ISO 8583 data elements in brackets). The
card is identified by a vault token only: a card number anywhere in a token or an id is refused
by validation (``domain.pan`` says what counts as one), and because errors hide their input,
it is never echoed back in the message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from payment_posting_functions.domain.card_message import (
    MTI_PATTERN,
    PROCESSING_CODE_PATTERN,
    MessageClass,
    TransactionType,
    is_advice,
    link_id,
    message_class,
    transaction_type,
)
from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.pan import contains_card_number, redact_card_numbers


def _no_card_number(value: str) -> str:
    # Anywhere in the value, not only all of it: "tok_<PAN>" is a card number in clear too.
    if contains_card_number(value):
        raise ValueError("contains what looks like a card number; send the vault token instead")
    return value


def _country(code: str) -> str:
    # Imported on first use, like iso4217 in money.py (docs/adr/0024).
    import pycountry

    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("is not an ISO 3166-1 alpha-2 country code")
    return code


def _rate(value: Any) -> Any:
    # A conversion rate is exact decimal data (DE 10); a float would already have lost digits.
    if isinstance(value, float | bool):
        raise ValueError("must be a decimal string, not a binary float")
    return value


def _iso_8601(value: Any) -> Any:
    # Pydantic would read "4111111111111111" as epoch milliseconds; a record's time is text in
    # ISO 8601 (DE 7 as the authorization system renders it), never a bare number.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time with a zone") from None
    if isinstance(value, datetime):
        return value
    raise ValueError("must be an ISO 8601 date and time with a zone")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Every field that can hold 13 digits in a row is checked for a card number; the fixed-format
# numeric ones (STAN, RRN, terminal id, codes) are too short to hold one, and their patterns
# are the check. tests/unit/test_transaction.py enumerates the fields to keep this true.
Token = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{12,64}$"), AfterValidator(_no_card_number)]
Identifier = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$"), AfterValidator(_no_card_number)
]
MerchantId = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,15}$"), AfterValidator(_no_card_number)]
AccountId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,34}$"), AfterValidator(_no_card_number)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$"), AfterValidator(_country)]
ConversionRate = Annotated[
    Decimal, BeforeValidator(_rate), Field(gt=0, max_digits=12, decimal_places=8)
]
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_utc)]


Stan = Annotated[str, Field(pattern=r"^\d{6}$")]
Rrn = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{12}$")]
AuthCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{6}$")]


class OriginalData(BaseModel):
    """The original's data elements a reversal (or a refund, where known) carries to name what
    it undoes: ISO 8583 DE 90 (original MTI, STAN, transmission time) with the original's
    RRN (DE 37) and auth code (DE 38), which link it to the original's transfer."""

    model_config = RECORD_CONFIG

    mti: str = Field(pattern=MTI_PATTERN, description="the original's message type")
    stan: Stan = Field(description="the original's trace number [90.2]")
    transmitted_at: UtcDatetime = Field(description="the original's transmission time [90.3]")
    rrn: Rrn = Field(description="the original's retrieval reference number [37]")
    auth_code: AuthCode = Field(description="the original's authorization code [38]")

    def to_item(self) -> dict[str, Any]:
        item = self.model_dump(by_alias=True)
        item["transmittedAt"] = self.transmitted_at.isoformat()
        return item


class AuthorizedTransaction(BaseModel):
    """An authorized card, ATM or real-time payment transaction awaiting posting."""

    model_config = RECORD_CONFIG

    transaction_id: Identifier
    mti: str = Field(
        pattern=MTI_PATTERN,
        description="message type: 0100/0120 authorization, 0200/0220 financial, 0400/0420"
        " reversal, 1240 clearing (presentment); x2x0 is an advice",
    )
    pan_token: Token = Field(description="vault token standing for the card number [2]")
    processing_code: str = Field(
        pattern=PROCESSING_CODE_PATTERN,
        description="[3] 00 purchase, 01 cash, 20 refund, 30/31 inquiry",
    )
    transaction_amount: Money = Field(description="amount in the transaction currency [4, 49]")
    billing_amount: Money = Field(description="amount in the cardholder billing currency [6, 51]")
    conversion_rate: ConversionRate = Field(description="transaction to billing rate [10]")
    stan: Stan = Field(description="system trace audit number [11]")
    rrn: Rrn = Field(description="retrieval reference number [37]")
    auth_code: AuthCode = Field(description="authorization code [38]")
    mcc: str = Field(pattern=r"^\d{4}$", description="merchant category code [18]")
    pos_entry_mode: str = Field(pattern=r"^\d{3}$", description="[22]")
    acquirer_country: Country = Field(description="[19]")
    # Optional here on purpose: a record without it is well formed but fails the business
    # rules, which reject it with a reason code instead of quarantining it.
    issuer_country: Country | None = None
    terminal_id: str = Field(pattern=r"^[A-Za-z0-9]{1,8}$", description="[41]")
    merchant_id: MerchantId = Field(description="card acceptor id [42]")
    account_id: AccountId
    transmitted_at: UtcDatetime = Field(description="transmission date and time [7]")
    original: OriginalData | None = Field(
        default=None, description="what a reversal undoes, or a refund returns [90]"
    )
    final_clearing: bool | None = Field(
        default=None,
        description="clearing only: false for a partial shipment that more clearings follow",
    )

    @model_validator(mode="after")
    def _links(self) -> AuthorizedTransaction:
        if self.message_class is MessageClass.REVERSAL and self.original is None:
            raise ValueError("a reversal carries the original's data elements (original)")
        if (
            self.original is not None
            and self.message_class is not MessageClass.REVERSAL
            and self.transaction_type is not TransactionType.REFUND
        ):
            raise ValueError("original: only a reversal or a refund names an original")
        if self.original is not None and message_class(self.original.mti) not in (
            MessageClass.AUTHORIZATION,
            MessageClass.FINANCIAL,
        ):
            raise ValueError("original.mti: must be an authorization or a financial message")
        if self.final_clearing is not None and self.message_class is not MessageClass.CLEARING:
            raise ValueError("finalClearing: only a clearing record says whether it is final")
        return self

    @property
    def message_class(self) -> MessageClass:
        return message_class(self.mti)

    @property
    def advice(self) -> bool:
        return is_advice(self.mti)

    @property
    def transaction_type(self) -> TransactionType:
        return transaction_type(self.processing_code)

    @property
    def link_id(self) -> str:
        """The link this message names itself by (see ``domain.card_message``): an
        authorization's hold and a financial message's posting are kept under it, and a
        clearing, carrying its authorization's RRN and auth code, names the hold it settles."""
        return link_id(self.pan_token, self.rrn, self.auth_code)

    @property
    def original_link_id(self) -> str | None:
        """The link of what a reversal undoes or a refund returns; None without an original."""
        if self.original is None:
            return None
        return link_id(self.pan_token, self.original.rrn, self.original.auth_code)

    @property
    def is_foreign(self) -> bool:
        """Billed in another currency than the one the cardholder paid in."""
        return self.transaction_amount.currency != self.billing_amount.currency

    def to_item(self) -> dict[str, Any]:
        """The record as a table item: camelCase names, exact numbers, no floats."""
        item = self.model_dump(by_alias=True, exclude_none=True)
        item["conversionRate"] = str(self.conversion_rate)
        item["transmittedAt"] = self.transmitted_at.isoformat()
        if self.original is not None:
            item["original"] = self.original.to_item()
        return item


def describe_validation_error(error: ValidationError) -> str:
    """A reason a person can act on, naming fields and rules but never the values.

    The input may be a clear PAN, so only locations and messages are used, and the result is
    passed through the redaction in case a field name (an unknown field) carried one.
    """
    parts = []
    for detail in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in detail["loc"]) or "record"
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return redact_card_numbers("; ".join(parts))
