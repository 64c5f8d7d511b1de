from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_posting_functions.domain.generator import (
    SAMPLE_ACCOUNT_IDS,
    Defect,
    GeneratedRecord,
    Kind,
    Knobs,
    TransactionGenerator,
)
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
