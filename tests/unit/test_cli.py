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
