"""Sample source (the guidance's "visa-mock"): realistic card and ATM messages with knobs.

Each generated record says what it was made to be, so a run can be checked against it: a
valid record, a duplicate of an earlier one (same authorization, new transaction id, sent again
a few seconds later), or a malformed record with the defect that was planted; which message of
a card transaction's life it is (``Lifecycle``: an authorization, the clearing that settles
it, an ATM withdrawal, a reversal, a refund, an inquiry...); and, for the message that starts
a card transaction, what was planned for it (``Fate``: cleared, cleared in parts, never
cleared, reversed...).

With every lifecycle rate at 0 (``Knobs()``) the mix is the plain one: each record stands
alone, a single message posted at once (0200): a debit PIN purchase, or, at MCC 6011, an ATM
withdrawal. (Before issue 12 it wrote the purchases as 0100 authorizations, which were posted
as final debits; an authorization now holds, and nothing would clear it.)

``LIFECYCLE_MIX`` is the card lifecycle the demo runs: dual-message purchases cleared later
in the stream (sometimes at another amount, sometimes in parts, sometimes never), single-
message ATM and debit PIN transactions, full and partial reversals, refunds, inquiries and
the odd advice. A later message of a card transaction comes at least ``min_gap`` records
after the one before it: never in the same write chunk, as a scheme's clearing file comes
the next day.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from payment_posting_functions.domain.money import minor_unit_exponent
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
# The lifecycle mix's card purchases: the same without the ATM (a kind of its own there),
# with hotels and car rental, whose holds last 31 days rather than 7 (card_message).
_PURCHASE_PROFILES: tuple[tuple[str, int, int], ...] = (
    *(profile for profile in _MERCHANT_PROFILES if profile[0] != "6011"),
    ("7011", 80, 900),
    ("7512", 40, 600),
)
_ATM_PROFILE = ("6011", 20, 500)
_RESTAURANT = "5812"
# (currency, exponent, rate to EUR as a decimal string, acquirer country)
_FOREIGN: tuple[tuple[str, int, str, str], ...] = (
    ("USD", 2, "0.92150000", "US"),
    ("GBP", 2, "1.16730000", "GB"),
    ("JPY", 0, "0.00612000", "JP"),
    ("CHF", 2, "1.04120000", "CH"),
)
HOME_CURRENCY = "EUR"
HOME_COUNTRY = "DE"
_NO_CONVERSION = "1.00000000"
# A well-known test card number: Luhn-valid, so validation must refuse it as a clear PAN.
_TEST_PAN = "4111111111111111"
# Of the refunds the lifecycle mix makes, this share names the purchase it returns
# (``original``); the rest are plain credits, as a merchant may send one.
_REFUND_NAMES_ORIGINAL = 2 / 3


class Kind(StrEnum):
    VALID = "valid"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"


class Lifecycle(StrEnum):
    """Which message of a card transaction's life a record is."""

    AUTHORIZATION = "authorization"  # 0100/0120: a hold, for a clearing to post (or not)
    CLEARING = "clearing"  # 1240 settling an earlier authorization (the last or only one)
    PARTIAL_CLEARING = "partial clearing"  # 1240 of a split shipment, more to follow
    UNMATCHED_CLEARING = "clearing without authorization"  # 1240 with no hold before it
    ATM = "atm"  # 0200/0220 cash withdrawal
    DEBIT_PIN = "debit pin"  # 0200/0220 purchase, posted at once
    REVERSAL = "reversal"  # 0400/0420 of the whole original
    PARTIAL_REVERSAL = "partial reversal"  # 0400/0420 of a part (an ATM's partial dispense)
    REFUND = "refund"  # 0200 or 1240 with processing code 20: money back to the card
    INQUIRY = "inquiry"  # 0200 with processing code 31: a balance inquiry, no money moves


class Fate(StrEnum):
    """What the generator planned for the card transaction a record starts."""

    CLEARED = "cleared"  # one clearing, at the authorized amount or another
    CLEARED_IN_PARTS = "cleared in parts"  # a split shipment: partial clearings, then a final
    NEVER_CLEARED = "never cleared"  # the hold waits, then expires
    REVERSED = "reversed"  # undone in full: a hold voided, a posting corrected
    PARTIALLY_REVERSED = "partially reversed"  # a part undone (an authorization: rest cleared)
    REFUNDED = "refunded"  # cleared or posted, then (part of it) refunded
    POSTED = "posted"  # a single message that stands


class RuleBreak(StrEnum):
    """Well formed, but planted to fail a business rule of the workflow."""

    MISSING_ISSUER_COUNTRY = "missing issuer country"
    ZERO_AMOUNT = "zero amount"
    FX_MISMATCH = "billing amount off the conversion rate"
    CURRENCY_MISMATCH = "billed in a currency other than the account's"


# What rule_break_rate plants; a currency mismatch has a rate of its own. A fixed tuple, so
# a seed draws the same rule breaks as before the currency mismatch existed.
_PLANTED_RULE_BREAKS = (
    RuleBreak.MISSING_ISSUER_COUNTRY,
    RuleBreak.ZERO_AMOUNT,
    RuleBreak.FX_MISMATCH,
)


class Defect(StrEnum):
    MISSING_STAN = "missing stan"
    FRACTIONAL_AMOUNT = "fractional amount"
    UNKNOWN_CURRENCY = "unknown currency"
    CLEAR_PAN = "clear PAN in token field"
    BAD_MCC = "malformed merchant category code"


# New card transactions the lifecycle mix starts, as shares of them; the rest are
# dual-message purchases (authorizations).
_START_RATES = ("atm_rate", "debit_pin_rate", "inquiry_rate", "unmatched_clearing_rate")
# What becomes of a purchase, as shares of them; the rest of the authorizations are never
# cleared, the rest of the single-message purchases stand as posted.
_FATE_RATES = ("clearing_rate", "split_shipment_rate", "reversal_rate", "refund_rate")
_LIFECYCLE_RATES = (
    *_START_RATES,
    *_FATE_RATES,
    "partial_reversal_share",
    "amount_change_rate",
    "advice_rate",
    "currency_mismatch_rate",
)


@dataclass(frozen=True)
class Knobs:
    """Rates are fractions of the records generated (0.0 to 1.0).

    A record is malformed first, then a duplicate, so with rates summing past 1 the
    duplicates are what gives way.

    The lifecycle rates (all 0 by default: each record stands alone, the mix of earlier
    versions) are fractions of the new card transactions: ``atm_rate``, ``debit_pin_rate``,
    ``inquiry_rate`` and ``unmatched_clearing_rate`` of them start as such, the rest as an
    authorization. Of the purchases, ``clearing_rate`` are cleared once (at another amount
    for ``amount_change_rate`` of those: a tip of up to 20 % at a restaurant, less
    elsewhere), ``split_shipment_rate`` in two or three parts, ``reversal_rate`` reversed
    (``partial_reversal_share`` of those in part), ``refund_rate`` refunded; the rest of the
    authorizations are never cleared and their holds expire. ATM withdrawals are reversed at
    ``reversal_rate`` too (a partial one is a partial dispense). ``advice_rate`` of the
    authorizations, financial messages and reversals are advices (0120, 0220, 0420), and
    ``currency_mismatch_rate`` of the new transactions are billed in a currency other than
    the account's, for the rules to reject. A later message of a card transaction comes
    ``min_gap`` to ``max_gap`` records after the one before it.
    """

    duplicate_rate: float = 0.05
    foreign_rate: float = 0.15
    high_value_rate: float = 0.03
    unknown_account_rate: float = 0.02
    malformed_rate: float = 0.02
    rule_break_rate: float = 0.02
    high_value_minor: int = 1_000_000  # 10,000.00 EUR
    atm_rate: float = 0.0
    debit_pin_rate: float = 0.0
    inquiry_rate: float = 0.0
    unmatched_clearing_rate: float = 0.0
    clearing_rate: float = 0.0
    split_shipment_rate: float = 0.0
    reversal_rate: float = 0.0
    partial_reversal_share: float = 0.0
    refund_rate: float = 0.0
    amount_change_rate: float = 0.0
    advice_rate: float = 0.0
    currency_mismatch_rate: float = 0.0
    min_gap: int = 40
    max_gap: int = 150

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith(("_rate", "_share")):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{f.name} must be between 0 and 1, got {value}")
        for group in (_START_RATES, _FATE_RATES):
            total = sum(getattr(self, name) for name in group)
            if total > 1.0:
                raise ValueError(f"{' + '.join(group)} must not exceed 1, got {total:g}")
        if self.min_gap < 1:
            raise ValueError(f"min_gap must be at least 1, got {self.min_gap}")
        if self.max_gap < self.min_gap:
            raise ValueError(
                f"max_gap must be at least min_gap ({self.min_gap}), got {self.max_gap}"
            )

    @property
    def lifecycle(self) -> bool:
        """Does this mix have card lifecycles (some rate of them above 0)?"""
        return any(getattr(self, name) for name in _LIFECYCLE_RATES)


# The demo's mix of the card lifecycle (``payments-local run`` and ``generate`` default to
# it). Shares are of new card transactions, so about a third of the records are the later
# messages: clearings, reversals, refunds.
LIFECYCLE_MIX = Knobs(
    atm_rate=0.12,
    debit_pin_rate=0.15,
    inquiry_rate=0.03,
    unmatched_clearing_rate=0.02,
    clearing_rate=0.62,
    split_shipment_rate=0.06,
    reversal_rate=0.08,
    partial_reversal_share=0.4,
    refund_rate=0.06,
    amount_change_rate=0.25,
    advice_rate=0.03,
    currency_mismatch_rate=0.02,
)


@dataclass(frozen=True)
class GeneratedRecord:
    """A table item and what it was made to be."""

    item: dict[str, Any]
    kind: Kind
    duplicate_of: str | None = None
    defect: Defect | None = None
    rule_break: RuleBreak | None = None
    lifecycle: Lifecycle = Lifecycle.AUTHORIZATION
    # For the first message of a card transaction: what the generator planned for it.
    fate: Fate | None = None
    # For a later message: the transaction id of the message that started its card
    # transaction (the authorization a clearing settles, what a reversal or refund undoes).
    follows: str | None = None

    @property
    def transaction_id(self) -> str:
        return str(self.item["transactionId"])

    @property
    def kind_label(self) -> str:
        return self.kind.value

    @property
    def lifecycle_label(self) -> str:
        return lifecycle_label(self.lifecycle.value, self.fate.value if self.fate else None)

    @property
    def planted(self) -> str | None:
        planted = self.defect or self.rule_break
        return planted.value if planted else None


def lifecycle_label(lifecycle: str, fate: str | None) -> str:
    """What a record was made to be in a card transaction's life, in words:
    ``authorization (cleared in parts)``, ``atm (partially reversed)``, ``clearing``."""
    return f"{lifecycle} ({fate})" if fate else lifecycle


def _legacy_lifecycle(item: dict[str, Any]) -> Lifecycle:
    # The plain mix: single messages, cash (01) at an ATM, the rest debit PIN purchases.
    if str(item.get("processingCode", "")).startswith("01"):
        return Lifecycle.ATM
    return Lifecycle.DEBIT_PIN


_Build = Callable[[], GeneratedRecord]


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
        self._originals: list[GeneratedRecord] = []
        # Later messages by the record position they are to take: each place is taken once,
        # so a message keeps its distance from the one before it exactly.
        self._places: dict[int, _Build] = {}
        self._position = 0
        self._count = 0

    def generate(self, count: int) -> Iterator[GeneratedRecord]:
        """Yield ``count`` records; duplicates only ever repeat a record already yielded, and
        a later message of a card transaction only ever follows the one before it."""
        if count < 0:
            raise ValueError("count must not be negative")
        self._count = count
        self._places.clear()
        for position in range(count):
            self._position = position
            self._clock += timedelta(milliseconds=self._random.randint(5, 400))
            planned = self._places.pop(position, None)
            if planned is not None:
                record = planned()
                self._originals.append(record)
                yield record
                continue
            roll = self._random.random()
            if roll < self.knobs.malformed_rate:
                yield self._malformed()
            elif roll < self.knobs.malformed_rate + self.knobs.duplicate_rate and self._originals:
                yield self._duplicate()
            elif self.knobs.lifecycle:
                yield self._start()
            else:
                item = self._valid()
                rule_break = None
                if self._random.random() < self.knobs.rule_break_rate:
                    rule_break = self._break_a_rule(item)
                record = GeneratedRecord(
                    item=item,
                    kind=Kind.VALID,
                    rule_break=rule_break,
                    lifecycle=_legacy_lifecycle(item),
                )
                if rule_break is None:
                    self._originals.append(record)  # duplicates repeat clean records only
                yield record

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

    def _auth_code(self) -> str:
        return "".join(self._random.choice("ABCDEF0123456789") for _ in range(6))

    def _valid(self) -> dict[str, Any]:
        rnd = self._random
        mcc, low, high = rnd.choice(_MERCHANT_PROFILES)
        if rnd.random() < self.knobs.foreign_rate:
            currency, exponent, rate, acquirer = rnd.choice(_FOREIGN)
        else:
            currency, exponent, rate, acquirer = HOME_CURRENCY, 2, _NO_CONVERSION, HOME_COUNTRY
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
            "mti": "0200",
            "panToken": self._not_a_card_number(
                lambda: "tok_" + "".join(rnd.choice("0123456789abcdef") for _ in range(24))
            ),
            "processingCode": "010000" if mcc == "6011" else "000000",
            "transactionAmount": {"amount": amount_minor, "currency": currency},
            "billingAmount": {"amount": billing_minor, "currency": HOME_CURRENCY},
            "conversionRate": rate if currency != HOME_CURRENCY else _NO_CONVERSION,
            "stan": self._digits(6),
            "rrn": self._digits(12),
            "authCode": self._auth_code(),
            "mcc": mcc,
            "posEntryMode": rnd.choice(("051", "071", "010", "812")),
            "acquirerCountry": acquirer,
            "issuerCountry": HOME_COUNTRY,
            "terminalId": f"T{self._digits(7)}",
            "merchantId": self._not_a_card_number(lambda: f"M{self._digits(14)}"),
            "accountId": account,
            "transmittedAt": self._clock.isoformat(),
        }

    # -- the lifecycle mix ----------------------------------------------------------------

    def _start(self) -> GeneratedRecord:
        """The first message of a new card transaction, with its later messages planned."""
        rnd = self._random
        k = self.knobs
        roll = rnd.random()
        lifecycle = Lifecycle.AUTHORIZATION
        threshold = 0.0
        for name, kind in zip(
            _START_RATES,
            (Lifecycle.ATM, Lifecycle.DEBIT_PIN, Lifecycle.INQUIRY, Lifecycle.UNMATCHED_CLEARING),
            strict=True,
        ):
            threshold += getattr(k, name)
            if roll < threshold:
                lifecycle = kind
                break
        if lifecycle is Lifecycle.INQUIRY:
            record = GeneratedRecord(item=self._inquiry(), kind=Kind.VALID, lifecycle=lifecycle)
            self._originals.append(record)
            return record
        item, high_value = self._purchase(lifecycle)
        rule_break = None
        roll = rnd.random()
        if roll < k.rule_break_rate:
            rule_break = self._break_a_rule(item)
        elif roll < k.rule_break_rate + k.currency_mismatch_rate:
            rule_break = self._bill_in_another_currency(item)
        if rule_break is not None:
            # Rejected by the rules: nothing follows it, and duplicates repeat clean records.
            return GeneratedRecord(
                item=item, kind=Kind.VALID, rule_break=rule_break, lifecycle=lifecycle
            )
        fate = None
        if lifecycle is not Lifecycle.UNMATCHED_CLEARING:
            # A high-value transaction waits for a person's review; what would follow it is
            # not planned (a clearing would find no hold until the decision).
            fate = self._fate(lifecycle) if not high_value else None
            fate = self._plan(lifecycle, fate, item) if fate else self._standing(lifecycle)
        record = GeneratedRecord(item=item, kind=Kind.VALID, lifecycle=lifecycle, fate=fate)
        self._originals.append(record)
        return record

    @staticmethod
    def _standing(lifecycle: Lifecycle) -> Fate:
        """The fate of a first message nothing follows."""
        return Fate.NEVER_CLEARED if lifecycle is Lifecycle.AUTHORIZATION else Fate.POSTED

    def _fate(self, lifecycle: Lifecycle) -> Fate:
        k = self.knobs
        roll = self._random.random()
        reversed_ = (
            Fate.PARTIALLY_REVERSED
            if self._random.random() < k.partial_reversal_share
            else Fate.REVERSED
        )
        choices: tuple[tuple[float, Fate], ...]
        if lifecycle is Lifecycle.AUTHORIZATION:
            choices = (
                (k.clearing_rate, Fate.CLEARED),
                (k.split_shipment_rate, Fate.CLEARED_IN_PARTS),
                (k.reversal_rate, reversed_),
                (k.refund_rate, Fate.REFUNDED),
            )
        elif lifecycle is Lifecycle.DEBIT_PIN:
            choices = ((k.reversal_rate, reversed_), (k.refund_rate, Fate.REFUNDED))
        else:  # an ATM withdrawal is reversed (a partial dispense, a time-out) or stands
            choices = ((k.reversal_rate, reversed_),)
        threshold = 0.0
        for rate, fate in choices:
            threshold += rate
            if roll < threshold:
                return fate
        return self._standing(lifecycle)

    def _plan(self, lifecycle: Lifecycle, fate: Fate, first: dict[str, Any]) -> Fate:
        """Queue the later messages ``fate`` needs; when they do not fit in what is left of
        the stream, the transaction stands alone instead (and its fate says so)."""
        rnd = self._random
        amount = int(first["transactionAmount"]["amount"])
        dual = lifecycle is Lifecycle.AUTHORIZATION
        plan: list[_Build] = []
        if fate is Fate.CLEARED:
            final = amount
            if rnd.random() < self.knobs.amount_change_rate:
                # A restaurant adds the tip; elsewhere (fuel, a hotel's estimate) it is less.
                if first["mcc"] == _RESTAURANT:
                    final = amount * rnd.randint(105, 120) // 100
                else:
                    final = amount * rnd.randint(60, 95) // 100
            plan.append(self._clearing(first, max(final, 1), Lifecycle.CLEARING))
        elif fate is Fate.CLEARED_IN_PARTS:
            parts = self._split(amount, rnd.randint(2, 3))
            plan += [self._clearing(first, part, Lifecycle.PARTIAL_CLEARING) for part in parts[:-1]]
            plan.append(self._clearing(first, parts[-1], Lifecycle.CLEARING, says_final=True))
        elif fate is Fate.REVERSED:
            plan.append(self._reversal(first, amount, Lifecycle.REVERSAL))
        elif fate is Fate.PARTIALLY_REVERSED:
            part = max(1, amount * rnd.randint(10, 60) // 100)
            if lifecycle is Lifecycle.ATM:
                # A partial dispense: the notes the machine could not give, a round amount
                # (tens, or thousands of yen), and at least one note given.
                exponent = minor_unit_exponent(first["transactionAmount"]["currency"])
                note = 1000 if exponent == 0 else 10 ** (exponent + 1)
                part = min(max(note, part // note * note), amount - note)
                if part <= 0:  # one note asked for: none given is a full reversal
                    plan.append(self._reversal(first, amount, Lifecycle.REVERSAL))
                    return Fate.REVERSED if self._schedule(plan) else self._standing(lifecycle)
            plan.append(self._reversal(first, part, Lifecycle.PARTIAL_REVERSAL))
            if dual:  # what is left of the hold is cleared
                plan.append(self._clearing(first, amount - part, Lifecycle.CLEARING))
        elif fate is Fate.REFUNDED:
            if dual:
                plan.append(self._clearing(first, amount, Lifecycle.CLEARING))
            refunded = amount if rnd.random() < 0.5 else max(1, amount * rnd.randint(20, 90) // 100)
            plan.append(self._refund(first, refunded, clearing=dual))
        if plan and not self._schedule(plan):
            return self._standing(lifecycle)
        return fate

    def _split(self, amount: int, parts: int) -> list[int]:
        """A split shipment's clearings: parts of the authorized amount, the last one the
        rest; one time in five the last part is smaller and the rest of the hold released."""
        # Sample amounts are hundreds of minor units at the least: every part gets some.
        cuts = sorted(self._random.sample(range(1, amount), min(parts, amount) - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, amount], strict=True)]
        if self._random.random() < 0.2 and shares[-1] > 1:
            shares[-1] = shares[-1] * 3 // 4
        return shares

    def _schedule(self, plan: list[_Build]) -> bool:
        """Give each later message a place ``min_gap`` to ``max_gap`` records after the one
        before it (the next free place from there), if the last one still falls within the
        stream; failing that, with the smallest gaps."""
        k = self.knobs
        for gaps in (
            [self._random.randint(k.min_gap, k.max_gap) for _ in plan],
            [k.min_gap] * len(plan),
        ):
            at, places = self._position, []
            for gap in gaps:
                at += gap
                while at in self._places:
                    at += 1
                places.append(at)
            if places[-1] < self._count:
                self._places.update(zip(places, plan, strict=True))
                return True
        return False

    def _amounts(self, first: dict[str, Any], amount: int) -> dict[str, Any]:
        """The amount fields for ``amount`` minor units in the first message's currency,
        billed at its conversion rate (rounded as the rules' FX check rounds)."""
        currency = first["transactionAmount"]["currency"]
        billing_currency = first["billingAmount"]["currency"]
        rate = Decimal(first["conversionRate"])
        major = Decimal(amount).scaleb(-minor_unit_exponent(currency)) * rate
        billed = major.scaleb(minor_unit_exponent(billing_currency))
        return {
            "transactionAmount": {"amount": amount, "currency": currency},
            "billingAmount": {
                "amount": int(billed.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
                "currency": billing_currency,
            },
        }

    def _later(
        self, first: dict[str, Any], amount: int, *, mti: str, same_link: bool
    ) -> dict[str, Any]:
        """A later message of ``first``'s card transaction: same card, account, merchant and
        terminal; its own transaction id and trace number, and its own RRN and auth code
        unless it carries ``first``'s (a clearing does: that is its link)."""
        item = {k: v for k, v in first.items() if k not in ("original", "finalClearing")}
        item.update(self._amounts(first, amount))
        item["transactionId"] = self._new_id()
        item["mti"] = mti
        item["stan"] = self._digits(6)
        if not same_link:
            item["rrn"] = self._digits(12)
            item["authCode"] = self._auth_code()
        item["transmittedAt"] = self._clock.isoformat()
        return item

    @staticmethod
    def _original(first: dict[str, Any]) -> dict[str, Any]:
        """The original data elements (DE 90, 37, 38) naming ``first``."""
        return {name: first[name] for name in ("mti", "stan", "transmittedAt", "rrn", "authCode")}

    def _record(
        self, item: dict[str, Any], lifecycle: Lifecycle, first: dict[str, Any]
    ) -> GeneratedRecord:
        return GeneratedRecord(
            item=item, kind=Kind.VALID, lifecycle=lifecycle, follows=str(first["transactionId"])
        )

    def _clearing(
        self, first: dict[str, Any], amount: int, lifecycle: Lifecycle, *, says_final: bool = False
    ) -> _Build:
        def build() -> GeneratedRecord:
            item = self._later(first, amount, mti="1240", same_link=True)
            if lifecycle is Lifecycle.PARTIAL_CLEARING:
                item["finalClearing"] = False
            elif says_final:
                # The last of a split shipment says so; a lone clearing leaves the flag out
                # (absent means final), as most clearing records do.
                item["finalClearing"] = True
            return self._record(item, lifecycle, first)

        return build

    def _reversal(self, first: dict[str, Any], amount: int, lifecycle: Lifecycle) -> _Build:
        def build() -> GeneratedRecord:
            advice = self._random.random() < self.knobs.advice_rate
            item = self._later(first, amount, mti="0420" if advice else "0400", same_link=False)
            item["original"] = self._original(first)
            return self._record(item, lifecycle, first)

        return build

    def _refund(self, first: dict[str, Any], amount: int, *, clearing: bool) -> _Build:
        # A dual-message purchase is refunded by a credit in the scheme's clearing file
        # (1240); a debit PIN purchase by a single refund message (0200).
        def build() -> GeneratedRecord:
            item = self._later(first, amount, mti="1240" if clearing else "0200", same_link=False)
            item["processingCode"] = "20" + first["processingCode"][2:]
            if self._random.random() < _REFUND_NAMES_ORIGINAL:
                item["original"] = self._original(first)
            return self._record(item, Lifecycle.REFUND, first)

        return build

    def _purchase(self, lifecycle: Lifecycle) -> tuple[dict[str, Any], bool]:
        """The first message of a card transaction that moves money; and whether it is above
        the high-value threshold."""
        rnd = self._random
        k = self.knobs
        if lifecycle is Lifecycle.ATM:
            mcc, low, high = _ATM_PROFILE
            mti, processing = "0200", "010000"
        else:
            mcc, low, high = rnd.choice(_PURCHASE_PROFILES)
            mti = {Lifecycle.DEBIT_PIN: "0200", Lifecycle.UNMATCHED_CLEARING: "1240"}.get(
                lifecycle, "0100"
            )
            processing = "000000"
        if mti in ("0100", "0200") and rnd.random() < k.advice_rate:
            mti = "0120" if mti == "0100" else "0220"  # decided by a stand-in or the scheme
        if rnd.random() < k.foreign_rate:
            currency, exponent, rate, acquirer = rnd.choice(_FOREIGN)
        else:
            currency, exponent, rate, acquirer = HOME_CURRENCY, 2, _NO_CONVERSION, HOME_COUNTRY
        high_value = rnd.random() < k.high_value_rate
        if high_value:
            billing_minor = k.high_value_minor + rnd.randint(0, 5_000_000)
        else:
            billing_minor = rnd.randint(low * 100, high * 100)
        local = Decimal(billing_minor).scaleb(-2) / Decimal(rate)
        if lifecycle is Lifecycle.ATM:
            # Cash comes in notes: a round amount in the local currency (tens, or thousands
            # of yen), billed at the rate.
            step = Decimal(1000 if exponent == 0 else 10)
            local = max(step, (local / step).quantize(Decimal(1)) * step)
        amount_minor = int(local.scaleb(exponent).to_integral_value())
        if rnd.random() < k.unknown_account_rate:
            account = f"ACC-X{self._digits(6)}"
        else:
            account = rnd.choice(self.account_ids)
        item: dict[str, Any] = {
            "transactionId": self._new_id(),
            "mti": mti,
            "panToken": self._not_a_card_number(
                lambda: "tok_" + "".join(rnd.choice("0123456789abcdef") for _ in range(24))
            ),
            "processingCode": processing,
            "transactionAmount": {"amount": amount_minor, "currency": currency},
            "billingAmount": {"amount": billing_minor, "currency": HOME_CURRENCY},
            "conversionRate": rate,
            "stan": self._digits(6),
            "rrn": self._digits(12),
            "authCode": self._auth_code(),
            "mcc": mcc,
            # A PIN at an ATM or a debit terminal: chip or contactless (DE 22).
            "posEntryMode": rnd.choice(
                ("051", "071") if mti[:2] == "02" else ("051", "071", "010", "812")
            ),
            "acquirerCountry": acquirer,
            "issuerCountry": HOME_COUNTRY,
            "terminalId": f"T{self._digits(7)}",
            "merchantId": self._not_a_card_number(lambda: f"M{self._digits(14)}"),
            "accountId": account,
            "transmittedAt": self._clock.isoformat(),
        }
        if lifecycle is Lifecycle.ATM:
            item.update(self._amounts(item, amount_minor))
        return item, high_value

    def _inquiry(self) -> dict[str, Any]:
        """A balance inquiry at an ATM: a financial message with no amount to move."""
        item, _ = self._purchase(Lifecycle.ATM)
        item.update(
            mti="0200",
            processingCode="310000",
            transactionAmount={"amount": 0, "currency": HOME_CURRENCY},
            billingAmount={"amount": 0, "currency": HOME_CURRENCY},
            conversionRate=_NO_CONVERSION,
            acquirerCountry=HOME_COUNTRY,
        )
        return item

    def _bill_in_another_currency(self, item: dict[str, Any]) -> RuleBreak:
        # Billed in the merchant's currency (a card issued in another currency would be):
        # consistent in itself, so only the account's currency refuses it.
        currency, _, _, acquirer = self._random.choice(_FOREIGN)
        amount = item["transactionAmount"]["amount"]
        if item["transactionAmount"]["currency"] != currency:
            amount = item["billingAmount"]["amount"]
        item.update(
            transactionAmount={"amount": amount, "currency": currency},
            billingAmount={"amount": amount, "currency": currency},
            conversionRate=_NO_CONVERSION,
            acquirerCountry=acquirer,
        )
        return RuleBreak.CURRENCY_MISMATCH

    # -- duplicates, rule breaks and defects ----------------------------------------------

    def _duplicate(self) -> GeneratedRecord:
        first = self._random.choice(self._originals)
        original = first.item
        item = dict(original)
        item["transactionId"] = self._new_id()
        # A retransmission: same authorization, sent again a little later.
        sent = datetime.fromisoformat(original["transmittedAt"])
        item["transmittedAt"] = (sent + timedelta(seconds=self._random.randint(1, 30))).isoformat()
        return GeneratedRecord(
            item=item,
            kind=Kind.DUPLICATE,
            duplicate_of=str(original["transactionId"]),
            lifecycle=first.lifecycle,
        )

    def _break_a_rule(self, item: dict[str, Any]) -> RuleBreak:
        rule_break = self._random.choice(_PLANTED_RULE_BREAKS)
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
        return GeneratedRecord(
            item=item, kind=Kind.MALFORMED, defect=defect, lifecycle=_legacy_lifecycle(item)
        )
