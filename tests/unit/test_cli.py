from __future__ import annotations

import json

from click.testing import CliRunner

from payment_local.cli import main
from payment_posting_functions.domain.transaction import AuthorizedTransaction


def test_generate_writes_one_json_item_per_line() -> None:
    result = CliRunner().invoke(
        main, ["generate", "-n", "25", "--seed", "4", "--malformed-rate", "0"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 25
    for line in lines:
        AuthorizedTransaction.model_validate(json.loads(line))


def test_generate_is_reproducible_with_a_seed() -> None:
    runner = CliRunner()
    args = ["generate", "-n", "10", "--seed", "9", "--start", "2026-11-24T09:00:00"]
    first = runner.invoke(main, args).output
    assert '"transmittedAt": "2026-11-24T09:00:00.' in first
    assert first == runner.invoke(main, args).output


def test_with_kind_says_what_each_record_was_made_to_be() -> None:
    result = CliRunner().invoke(
        main, ["generate", "-n", "40", "--seed", "2", "--malformed-rate", "0.5", "--with-kind"]
    )
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {row["kind"] for row in rows} >= {"valid", "malformed"}
    malformed = [row for row in rows if row["kind"] == "malformed"]
    assert all(row["defect"] for row in malformed)
    # A fractional amount stays exact in JSON: a string, never a float.
    amounts = [row["item"]["transactionAmount"]["amount"] for row in malformed]
    assert all(not isinstance(amount, float) for amount in amounts)


def test_a_rate_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["generate", "--duplicate-rate", "1.5"])
    assert result.exit_code == 2
    assert "duplicate-rate" in result.output


def test_generate_makes_card_lifecycles_by_default_and_labels_them() -> None:
    result = CliRunner().invoke(
        main, ["generate", "-n", "200", "--seed", "5", "--with-kind", "--malformed-rate", "0"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    by_id = {row["item"]["transactionId"]: (n, row) for n, row in enumerate(rows)}
    clearings = [row for row in rows if row["lifecycle"] == "clearing" and row["kind"] == "valid"]
    assert clearings
    for clearing in clearings:
        position, first = by_id[clearing["follows"]]
        assert first["lifecycle"] == "authorization"
        assert first["fate"]
        assert position < rows.index(clearing)
        assert clearing["item"]["rrn"] == first["item"]["rrn"]
    assert {"atm", "debit pin", "authorization"} <= {row["lifecycle"] for row in rows}


def test_no_lifecycle_is_the_plain_mix() -> None:
    runner = CliRunner()
    args = ["generate", "-n", "60", "--seed", "9", "--start", "2026-11-24T09:00:00", "--with-kind"]
    plain = [
        json.loads(line)
        for line in runner.invoke(main, [*args, "--no-lifecycle"]).output.splitlines()
    ]
    assert {row["item"]["mti"] for row in plain} <= {"0100", "0200"}
    assert all(row["fate"] is None and row["follows"] is None for row in plain)
    assert plain != [json.loads(line) for line in runner.invoke(main, args).output.splitlines()]


def test_lifecycle_knobs_that_cannot_be_are_usage_errors() -> None:
    runner = CliRunner()
    both = runner.invoke(main, ["generate", "--no-lifecycle", "--clearing-rate", "0.5"])
    assert both.exit_code == 2
    assert "--no-lifecycle" in both.output
    assert "--clearing-rate" in both.output
    too_much = runner.invoke(main, ["generate", "--atm-rate", "0.7", "--debit-pin-rate", "0.5"])
    assert too_much.exit_code == 2
    assert "must not exceed 1" in too_much.output
    gap = runner.invoke(main, ["generate", "--min-gap", "60", "--max-gap", "30"])
    assert gap.exit_code == 2
    assert "max_gap" in gap.output
