"""Sample source (the guidance's "visa-mock"): realistic authorized transactions with knobs.

Each generated record says what it was made to be, so a run can be checked against it: a
valid record, a duplicate of an earlier one (same authorization, new transaction id, sent again
a few seconds later), or a malformed record with the defect that was planted.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from payment_posting_functions.domain.pan import contains_card_number

SAMPLE_ACCOUNT_IDS: tuple[str, ...] = tuple(f"ACC-{n:04d}" for n in range(1, 51))

# (MCC, typical amount range in major units): groceries, fuel, restaurants, ATM, airlines,
# electronics, gambling (a category rules often flag).
_MERCHANT_PROFILES: tuple[tuple[str, int, int], ...] = (
    ("5411", 5, 180),
    ("5541", 20, 120),
    ("5812", 10, 150),
    ("6011", 20, 500),
    ("4511", 80, 1500),
    ("5732", 30, 2500),
    ("7995", 10, 400),
)
# (currency, exponent, rate to EUR as a decimal string, acquirer country)
_FOREIGN: tuple[tuple[str, int, str, str], ...] = (
    ("USD", 2, "0.92150000", "US"),
    ("GBP", 2, "1.16730000", "GB"),
    ("JPY", 0, "0.00612000", "JP"),
    ("CHF", 2, "1.04120000", "CH"),
)
HOME_CURRENCY = "EUR"
HOME_COUNTRY = "DE"
# A well-known test card number: Luhn-valid, so validation must refuse it as a clear PAN.
_TEST_PAN = "4111111111111111"


class Kind(StrEnum):
    VALID = "valid"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"


class RuleBreak(StrEnum):
    """Well formed, but planted to fail a business rule of the workflow."""

    MISSING_ISSUER_COUNTRY = "missing issuer country"
    ZERO_AMOUNT = "zero amount"
    FX_MISMATCH = "billing amount off the conversion rate"


class Defect(StrEnum):
    MISSING_STAN = "missing stan"
    FRACTIONAL_AMOUNT = "fractional amount"
    UNKNOWN_CURRENCY = "unknown currency"
    CLEAR_PAN = "clear PAN in token field"
    BAD_MCC = "malformed merchant category code"


@dataclass(frozen=True)
class Knobs:
    """Rates are fractions of the records generated (0.0 to 1.0).

    A record is malformed first, then a duplicate, so with rates summing past 1 the
    duplicates are what gives way.
    """

    duplicate_rate: float = 0.05
    foreign_rate: float = 0.15
    high_value_rate: float = 0.03
    unknown_account_rate: float = 0.02
    malformed_rate: float = 0.02
    rule_break_rate: float = 0.02
    high_value_minor: int = 1_000_000  # 10,000.00 EUR

    def __post_init__(self) -> None:
        for name in (
            "duplicate_rate",
            "foreign_rate",
            "high_value_rate",
            "unknown_account_rate",
            "malformed_rate",
            "rule_break_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class GeneratedRecord:
    """A table item and what it was made to be."""

    item: dict[str, Any]
    kind: Kind
    duplicate_of: str | None = None
    defect: Defect | None = None
    rule_break: RuleBreak | None = None

    @property
    def transaction_id(self) -> str:
        return str(self.item["transactionId"])

    @property
    def kind_label(self) -> str:
        return self.kind.value

    @property
    def planted(self) -> str | None:
        planted = self.defect or self.rule_break
        return planted.value if planted else None


@dataclass
class TransactionGenerator:
    """Deterministic for a given seed and start time."""

    knobs: Knobs = field(default_factory=Knobs)
    seed: int | None = None
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    account_ids: tuple[str, ...] = SAMPLE_ACCOUNT_IDS

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._clock = self.start
        self._originals: list[dict[str, Any]] = []

    def generate(self, count: int) -> Iterator[GeneratedRecord]:
        """Yield ``count`` records; duplicates only ever repeat a record already yielded."""
        if count < 0:
            raise ValueError("count must not be negative")
        for _ in range(count):
            self._clock += timedelta(milliseconds=self._random.randint(5, 400))
            roll = self._random.random()
            if roll < self.knobs.malformed_rate:
                yield self._malformed()
            elif roll < self.knobs.malformed_rate + self.knobs.duplicate_rate and self._originals:
                yield self._duplicate()
            else:
                item = self._valid()
                rule_break = None
                if self._random.random() < self.knobs.rule_break_rate:
                    rule_break = self._break_a_rule(item)
                else:
                    self._originals.append(item)  # duplicates repeat clean records only
                yield GeneratedRecord(item=item, kind=Kind.VALID, rule_break=rule_break)

    def _new_id(self) -> str:
        return self._not_a_card_number(
            lambda: str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        )

    @staticmethod
    def _not_a_card_number(draw: Callable[[], str]) -> str:
        # Random digits look like a card number often enough (an "M" + 14 digit merchant id
        # about one time in 300) that validation would refuse genuine sample traffic and the
        # card-number detector would fire on a clean run: draw again instead.
        while contains_card_number(value := draw()):
            pass
        return value

    def _digits(self, length: int) -> str:
        return "".join(self._random.choice("0123456789") for _ in range(length))

    def _valid(self) -> dict[str, Any]:
        rnd = self._random
        mcc, low, high = rnd.choice(_MERCHANT_PROFILES)
        if rnd.random() < self.knobs.foreign_rate:
            currency, exponent, rate, acquirer = rnd.choice(_FOREIGN)
        else:
            currency, exponent, rate, acquirer = HOME_CURRENCY, 2, "1.00000000", HOME_COUNTRY
        if rnd.random() < self.knobs.high_value_rate:
            billing_minor = self.knobs.high_value_minor + rnd.randint(0, 5_000_000)
        else:
            billing_minor = rnd.randint(low * 100, high * 100)
        # The cardholder is billed in EUR; the merchant charged in its own currency.
        major = Decimal(billing_minor) / 100 / Decimal(rate)
        amount_minor = int(major.scaleb(exponent).to_integral_value())
        if rnd.random() < self.knobs.unknown_account_rate:
            account = f"ACC-X{self._digits(6)}"
        else:
            account = rnd.choice(self.account_ids)
        return {
            "transactionId": self._new_id(),
            "mti": "0200" if mcc == "6011" else "0100",
            "panToken": self._not_a_card_number(
                lambda: "tok_" + "".join(rnd.choice("0123456789abcdef") for _ in range(24))
            ),
            "processingCode": "010000" if mcc == "6011" else "000000",
            "transactionAmount": {"amount": amount_minor, "currency": currency},
            "billingAmount": {"amount": billing_minor, "currency": HOME_CURRENCY},
            "conversionRate": rate if currency != HOME_CURRENCY else "1.00000000",
            "stan": self._digits(6),
            "rrn": self._digits(12),
            "authCode": "".join(rnd.choice("ABCDEF0123456789") for _ in range(6)),
            "mcc": mcc,
            "posEntryMode": rnd.choice(("051", "071", "010", "812")),
            "acquirerCountry": acquirer,
            "issuerCountry": HOME_COUNTRY,
            "terminalId": f"T{self._digits(7)}",
            "merchantId": self._not_a_card_number(lambda: f"M{self._digits(14)}"),
            "accountId": account,
            "transmittedAt": self._clock.isoformat(),
        }

    def _duplicate(self) -> GeneratedRecord:
        original = self._random.choice(self._originals)
        item = dict(original)
        item["transactionId"] = self._new_id()
        # A retransmission: same authorization, sent again a little later.
        sent = datetime.fromisoformat(original["transmittedAt"])
        item["transmittedAt"] = (sent + timedelta(seconds=self._random.randint(1, 30))).isoformat()
        return GeneratedRecord(
            item=item, kind=Kind.DUPLICATE, duplicate_of=str(original["transactionId"])
        )

    def _break_a_rule(self, item: dict[str, Any]) -> RuleBreak:
        rule_break = self._random.choice(list(RuleBreak))
        if rule_break is RuleBreak.MISSING_ISSUER_COUNTRY:
            del item["issuerCountry"]
        elif rule_break is RuleBreak.ZERO_AMOUNT:
            item["transactionAmount"] = {**item["transactionAmount"], "amount": 0}
        else:
            # Billed 10 % more than amount x rate: far outside any sane FX tolerance.
            billing = item["billingAmount"]
            item["billingAmount"] = {**billing, "amount": billing["amount"] * 11 // 10 + 100}
        return rule_break

    def _malformed(self) -> GeneratedRecord:
        item = self._valid()
        defect = self._random.choice(list(Defect))
        if defect is Defect.MISSING_STAN:
            del item["stan"]
        elif defect is Defect.FRACTIONAL_AMOUNT:
            item["transactionAmount"] = {"amount": Decimal("1250.5"), "currency": "EUR"}
        elif defect is Defect.UNKNOWN_CURRENCY:
            item["billingAmount"] = {"amount": 1000, "currency": "ZZZ"}
        elif defect is Defect.CLEAR_PAN:
            item["panToken"] = _TEST_PAN
        else:
            item["mcc"] = "54A1"
        return GeneratedRecord(item=item, kind=Kind.MALFORMED, defect=defect)
