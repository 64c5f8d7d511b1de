from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_posting_functions.domain.card_message import MessageClass, TransactionType
from payment_posting_functions.domain.enrichment import fx_check
from payment_posting_functions.domain.generator import (
    LIFECYCLE_MIX,
    SAMPLE_ACCOUNT_IDS,
    Defect,
    Fate,
    GeneratedRecord,
    Kind,
    Knobs,
    Lifecycle,
    RuleBreak,
    TransactionGenerator,
)
from payment_posting_functions.domain.pan import contains_card_number
from payment_posting_functions.domain.transaction import AuthorizedTransaction

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def generate(count: int, knobs: Knobs | None = None, seed: int = 1) -> list[GeneratedRecord]:
    return list(
        TransactionGenerator(knobs=knobs or Knobs(), seed=seed, start=START).generate(count)
    )


def test_same_seed_same_records() -> None:
    assert [r.item for r in generate(50)] == [r.item for r in generate(50)]
    assert [r.item for r in generate(50)] != [r.item for r in generate(50, seed=2)]


def test_rates_shape_the_mix() -> None:
    records = generate(2000, Knobs(duplicate_rate=0.1, malformed_rate=0.05, foreign_rate=0.3))
    kinds = Counter(r.kind for r in records)
    assert 150 < kinds[Kind.DUPLICATE] < 250
    assert 60 < kinds[Kind.MALFORMED] < 140
    valid = [AuthorizedTransaction.model_validate(r.item) for r in records if r.kind is Kind.VALID]
    foreign = sum(tx.is_foreign for tx in valid)
    assert 0.2 < foreign / len(valid) < 0.4


def test_valid_records_validate_and_duplicates_repeat_an_earlier_authorization() -> None:
    records = generate(500, Knobs(duplicate_rate=0.2, malformed_rate=0.0))
    seen: dict[str, AuthorizedTransaction] = {}
    for record in records:
        tx = AuthorizedTransaction.model_validate(record.item)
        if record.kind is Kind.DUPLICATE:
            assert record.duplicate_of is not None
            first = seen[record.duplicate_of]
            assert (tx.pan_token, tx.stan, tx.rrn, tx.terminal_id, tx.transaction_amount) == (
                first.pan_token,
                first.stan,
                first.rrn,
                first.terminal_id,
                first.transaction_amount,
            )
            assert tx.transaction_id != first.transaction_id
            assert 0 < (tx.transmitted_at - first.transmitted_at).total_seconds() <= 30
        seen[tx.transaction_id] = tx


def test_malformed_records_fail_validation_for_their_planted_defect() -> None:
    records = [r for r in generate(400, Knobs(malformed_rate=0.5)) if r.kind is Kind.MALFORMED]
    assert {r.defect for r in records} == set(Defect)
    for record in records:
        with pytest.raises(ValidationError):
            AuthorizedTransaction.model_validate(record.item)


def test_billing_amount_follows_the_conversion_rate() -> None:
    for record in generate(
        300, Knobs(foreign_rate=1.0, malformed_rate=0, duplicate_rate=0, rule_break_rate=0)
    ):
        tx = AuthorizedTransaction.model_validate(record.item)
        exponent = {"USD": 2, "GBP": 2, "CHF": 2, "JPY": 0}[tx.transaction_amount.currency]
        paid = Decimal(tx.transaction_amount.amount).scaleb(-exponent)
        billed = Decimal(tx.billing_amount.amount).scaleb(-2)
        assert abs(paid * tx.conversion_rate - billed) <= tx.conversion_rate


def test_unknown_accounts_and_high_values_appear_at_their_rates() -> None:
    knobs = Knobs(unknown_account_rate=0.5, high_value_rate=0.5, malformed_rate=0, duplicate_rate=0)
    valid = [AuthorizedTransaction.model_validate(r.item) for r in generate(400, knobs)]
    unknown = sum(tx.account_id not in SAMPLE_ACCOUNT_IDS for tx in valid)
    high = sum(tx.billing_amount.amount >= knobs.high_value_minor for tx in valid)
    assert 150 < unknown < 250
    assert 150 < high < 250


@pytest.mark.parametrize(
    "knobs",
    [
        {"duplicate_rate": -0.1},
        {"malformed_rate": 1.1},
        {"foreign_rate": 2.0},
    ],
)
def test_knobs_out_of_range_are_refused(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="rate"):
        Knobs(**knobs)


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        list(TransactionGenerator().generate(-1))


# -- the card lifecycle -----------------------------------------------------------------

LIFECYCLE = dataclasses.replace(LIFECYCLE_MIX, malformed_rate=0, duplicate_rate=0)


def lifecycle(count: int = 1500, knobs: Knobs = LIFECYCLE, seed: int = 3) -> list[GeneratedRecord]:
    return generate(count, knobs, seed=seed)


def test_the_plain_mix_stands_alone() -> None:
    records = generate(400)
    assert {r.lifecycle for r in records} == {Lifecycle.DEBIT_PIN, Lifecycle.ATM}
    assert all(r.fate is None and r.follows is None for r in records)
    for record in records:
        atm = record.item["mcc"] == "6011"
        assert record.lifecycle is (Lifecycle.ATM if atm else Lifecycle.DEBIT_PIN)
    assert not Knobs().lifecycle
    assert LIFECYCLE_MIX.lifecycle


def test_the_lifecycle_mix_is_the_same_for_a_seed_and_every_record_validates() -> None:
    records = lifecycle(600, LIFECYCLE_MIX)
    assert [r.item for r in records] == [r.item for r in lifecycle(600, LIFECYCLE_MIX)]
    for record in records:
        if record.kind is not Kind.MALFORMED:
            AuthorizedTransaction.model_validate(record.item)
            # Links, ids and codes never look like a card number (the detector would fire).
            assert not contains_card_number(json.dumps(record.item, default=str))


def test_every_kind_of_message_appears() -> None:
    records = lifecycle()
    assert {r.lifecycle for r in records} == set(Lifecycle)
    assert {r.fate for r in records if r.fate} == set(Fate)
    mtis = Counter(r.item["mti"] for r in records)
    assert set(mtis) == {"0100", "0120", "0200", "0220", "0400", "0420", "1240"}


def test_a_later_message_follows_the_one_before_it_by_a_few_dozen_records() -> None:
    knobs = LIFECYCLE
    for count in (120, 300, 1000):
        records = lifecycle(count, knobs)
        position = {r.transaction_id: n for n, r in enumerate(records)}
        previous: dict[str, int] = {}
        for n, record in enumerate(records):
            if record.follows is None:
                continue
            before = previous.get(record.follows, position[record.follows])
            assert knobs.min_gap <= n - before <= knobs.max_gap + 20, (count, n, before)
            previous[record.follows] = n


def test_what_was_planned_for_a_transaction_is_what_follows_it() -> None:
    records = lifecycle()
    later: dict[str, list[GeneratedRecord]] = defaultdict(list)
    for record in records:
        if record.follows:
            later[record.follows].append(record)
    expected: dict[Fate, list[list[Lifecycle]]] = {
        Fate.CLEARED: [[Lifecycle.CLEARING]],
        Fate.NEVER_CLEARED: [[]],
        Fate.POSTED: [[]],
        Fate.REVERSED: [[Lifecycle.REVERSAL]],
        Fate.PARTIALLY_REVERSED: [[Lifecycle.PARTIAL_REVERSAL, Lifecycle.CLEARING],
                                  [Lifecycle.PARTIAL_REVERSAL]],
        Fate.REFUNDED: [[Lifecycle.CLEARING, Lifecycle.REFUND], [Lifecycle.REFUND]],
        Fate.CLEARED_IN_PARTS: [[Lifecycle.PARTIAL_CLEARING, Lifecycle.CLEARING],
                                [Lifecycle.PARTIAL_CLEARING] * 2 + [Lifecycle.CLEARING]],
    }  # fmt: skip
    for record in records:
        if record.fate is None:
            continue
        shape = [r.lifecycle for r in later[record.transaction_id]]
        assert shape in expected[record.fate], (record.lifecycle_label, shape)
        dual = record.lifecycle is Lifecycle.AUTHORIZATION
        if record.fate in (Fate.PARTIALLY_REVERSED, Fate.REFUNDED):
            # A dual-message purchase is cleared as well; a single message was posted already.
            assert (Lifecycle.CLEARING in shape) is dual


def _parse(record: GeneratedRecord) -> AuthorizedTransaction:
    return AuthorizedTransaction.model_validate(record.item)


def test_a_clearing_carries_its_authorizations_link_and_its_own_trace_number() -> None:
    records = lifecycle()
    by_id = {r.transaction_id: r for r in records}
    clearings = [r for r in records if r.item["mti"] == "1240" and r.follows]
    clearings = [r for r in clearings if r.lifecycle is not Lifecycle.REFUND]
    assert len(clearings) > 100
    for record in clearings:
        clearing, auth = _parse(record), _parse(by_id[str(record.follows)])
        assert auth.message_class is MessageClass.AUTHORIZATION
        assert clearing.message_class is MessageClass.CLEARING
        assert (clearing.pan_token, clearing.rrn, clearing.auth_code, clearing.account_id) == (
            auth.pan_token, auth.rrn, auth.auth_code, auth.account_id)  # fmt: skip
        assert clearing.link_id == auth.link_id
        assert clearing.stan != auth.stan
        assert clearing.transaction_id != auth.transaction_id
        assert clearing.transmitted_at > auth.transmitted_at
        assert clearing.transaction_amount.currency == auth.transaction_amount.currency
        # Billed at the authorization's rate, exactly as the rules' FX check computes it.
        assert fx_check(clearing).deviation_bps == 0
        if record.lifecycle is Lifecycle.PARTIAL_CLEARING:
            assert clearing.final_clearing is False


def test_cleared_amounts_change_with_a_tip_or_for_less() -> None:
    records = lifecycle()
    by_id = {r.transaction_id: r for r in records}
    changes: dict[bool, list[float]] = defaultdict(list)
    for record in records:
        auth = by_id.get(str(record.follows))
        if auth is None or auth.fate is not Fate.CLEARED:
            continue
        authorized = auth.item["transactionAmount"]["amount"]
        cleared = record.item["transactionAmount"]["amount"]
        if cleared != authorized:
            changes[auth.item["mcc"] == "5812"].append(cleared / authorized)
    assert changes[True]
    assert changes[False]
    assert all(1.0 < ratio <= 1.2 for ratio in changes[True])  # a restaurant's tip
    assert all(0.5 < ratio < 1.0 for ratio in changes[False])


def test_a_split_shipment_clears_in_parts_the_last_one_final() -> None:
    records = lifecycle()
    later: dict[str, list[GeneratedRecord]] = defaultdict(list)
    for record in records:
        if record.follows:
            later[record.follows].append(record)
    splits = [r for r in records if r.fate is Fate.CLEARED_IN_PARTS]
    assert len(splits) > 10
    for auth in splits:
        parts = later[auth.transaction_id]
        assert [p.item.get("finalClearing") for p in parts] == [False] * (len(parts) - 1) + [True]
        cleared = sum(p.item["transactionAmount"]["amount"] for p in parts)
        assert 0 < cleared <= auth.item["transactionAmount"]["amount"]
        assert all(p.item["transactionAmount"]["amount"] > 0 for p in parts)


def test_a_reversal_names_its_original_and_is_its_own_message() -> None:
    knobs = dataclasses.replace(LIFECYCLE, clearing_rate=0.3, reversal_rate=0.3,
                                partial_reversal_share=0.5)  # fmt: skip
    records = lifecycle(knobs=knobs)
    by_id = {r.transaction_id: r for r in records}
    reversals = [
        r for r in records if r.lifecycle in (Lifecycle.REVERSAL, Lifecycle.PARTIAL_REVERSAL)
    ]
    assert len(reversals) > 20
    for record in reversals:
        first = by_id[str(record.follows)]
        reversal, original = _parse(record), _parse(first)
        assert reversal.message_class is MessageClass.REVERSAL
        assert reversal.original is not None
        assert reversal.original.to_item() == {
            "mti": original.mti,
            "stan": original.stan,
            "transmittedAt": original.transmitted_at.isoformat(),
            "rrn": original.rrn,
            "authCode": original.auth_code,
        }
        assert reversal.original_link_id == original.link_id
        assert (reversal.stan, reversal.rrn) != (original.stan, original.rrn)
        amount, reversed_ = original.transaction_amount.amount, reversal.transaction_amount.amount
        if record.lifecycle is Lifecycle.REVERSAL:
            assert reversed_ == amount
        else:
            assert 0 < reversed_ < amount
        assert reversal.processing_code == original.processing_code
    # An ATM's partial dispense gives back notes: a round amount.
    dispensed = [
        r
        for r in reversals
        if r.item["mcc"] == "6011" and r.lifecycle is Lifecycle.PARTIAL_REVERSAL
    ]
    assert dispensed
    for record in dispensed:
        amount = record.item["transactionAmount"]
        # Tens of the currency, or thousands of yen: 1000 minor units either way.
        assert amount["amount"] % 1000 == 0


def test_a_refund_credits_at_most_what_was_paid() -> None:
    records = lifecycle()
    by_id = {r.transaction_id: r for r in records}
    refunds = [r for r in records if r.lifecycle is Lifecycle.REFUND]
    assert len(refunds) > 10
    named = 0
    for record in refunds:
        refund, purchase = _parse(record), _parse(by_id[str(record.follows)])
        assert refund.transaction_type is TransactionType.REFUND
        assert refund.mti == (
            "1240" if purchase.message_class is MessageClass.AUTHORIZATION else "0200"
        )
        assert 0 < refund.transaction_amount.amount <= purchase.transaction_amount.amount
        assert refund.pan_token == purchase.pan_token
        if refund.original is not None:
            named += 1
            assert refund.original_link_id == purchase.link_id
    assert 0 < named < len(refunds)


def test_atm_debit_pin_and_inquiries_are_single_messages() -> None:
    records = [r for r in lifecycle() if r.kind is Kind.VALID and r.rule_break is None]
    for record in records:
        tx = _parse(record)
        if record.lifecycle is Lifecycle.ATM:
            assert (tx.mti[:2], tx.processing_code[:2], tx.mcc) == ("02", "01", "6011")
            assert tx.transaction_amount.amount % 1000 == 0  # notes: see the partial dispense
        elif record.lifecycle is Lifecycle.DEBIT_PIN:
            assert (tx.mti[:2], tx.processing_code[:2]) == ("02", "00")
            assert tx.pos_entry_mode in ("051", "071")
        elif record.lifecycle is Lifecycle.INQUIRY:
            assert (tx.mti, tx.transaction_type) == ("0200", TransactionType.INQUIRY)
            assert tx.transaction_amount.amount == tx.billing_amount.amount == 0
        elif record.lifecycle is Lifecycle.UNMATCHED_CLEARING:
            assert tx.mti == "1240"
            assert record.follows is None


def test_advices_and_currency_mismatches_come_at_their_rates() -> None:
    knobs = dataclasses.replace(LIFECYCLE, advice_rate=0.3, currency_mismatch_rate=0.2,
                                rule_break_rate=0)  # fmt: skip
    records = lifecycle(1500, knobs)
    authorizations = [r for r in records if r.item["mti"] in ("0100", "0120")]
    advised = sum(r.item["mti"] == "0120" for r in authorizations) / len(authorizations)
    assert 0.2 < advised < 0.4
    assert any(r.item["mti"] == "0420" for r in records)
    mismatched = [r for r in records if r.rule_break is RuleBreak.CURRENCY_MISMATCH]
    starts = [r for r in records if r.follows is None and r.lifecycle is not Lifecycle.INQUIRY]
    assert 0.12 < len(mismatched) / len(starts) < 0.28
    for record in mismatched:
        tx = _parse(record)
        assert tx.billing_amount.currency != "EUR"
        assert fx_check(tx).deviation_bps == 0  # only the account's currency refuses it
        assert record.fate is None  # rejected: nothing follows it
        assert record.transaction_id not in {r.follows for r in records}


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"atm_rate": 0.6, "debit_pin_rate": 0.5}, "must not exceed 1"),
        ({"clearing_rate": 0.9, "refund_rate": 0.2}, "must not exceed 1"),
        ({"partial_reversal_share": 1.5}, "between 0 and 1"),
        ({"min_gap": 0}, "min_gap"),
        ({"min_gap": 50, "max_gap": 40}, "max_gap"),
    ],
)
def test_lifecycle_knobs_that_cannot_be_are_refused(knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Knobs(**knobs)
