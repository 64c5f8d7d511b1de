"""`payments-local` refuses bad input clearly, and prints what a person can follow.

Every refused `send` leaves the last run's state (the files under .payments-local, and the
report) exactly as it was: each case writes a sentinel state first and compares after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from payment_local.cli import main
from payment_local.item_size import MAX_ITEM_BYTES, item_bytes, value_bytes
from payment_local.report import state_examples
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator
from payment_posting_functions.domain.pan import contains_card_number

CDK_OUT = Path(__file__).resolve().parents[2] / "cdk.out"
CARD = "4111111111111111"
STATE = {
    ".payments-local/default/events.jsonl": '{"sentinel": "events of the last run"}\n',
    ".payments-local/default/functions.log": "sentinel function log\n",
    ".payments-local/default/ledger.json": '{"balances": [], "entries": [], "sentinel": true}',
    "reports/demo-report.json": '{"sentinel": "the last report"}\n',
}


def _items(count: int = 3) -> list[dict[str, Any]]:
    knobs = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0)
    return [r.item for r in TransactionGenerator(knobs=knobs, seed=5).generate(count)]


def _lines(items: list[Any]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@pytest.fixture
def sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`send` of a file with these bytes, in a folder holding a previous run's state; checks
    after it that the state is untouched."""
    monkeypatch.chdir(tmp_path)
    for name, text in STATE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    def send(
        content: bytes | None, *, name: str = "tx.jsonl", stdin: bytes | None = None
    ) -> Result:
        if content is not None:
            (tmp_path / name).write_bytes(content)
        result = CliRunner().invoke(main, ["send", name, "--cdk-out", str(CDK_OUT)], input=stdin)
        assert {n: (tmp_path / n).read_text() for n in STATE} == STATE
        assert sorted(p.name for p in (tmp_path / ".payments-local/default").iterdir()) == sorted(
            Path(n).name for n in STATE if n.startswith(".payments-local")
        )
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    return send


def test_an_empty_file_is_refused(sent: Callable[..., Result]) -> None:
    result = sent(b"")
    assert result.exit_code == 1
    assert "tx.jsonl holds no transactions (it is empty or has only blank lines)" in result.output
    assert "the last run's state is unchanged" in result.output


def test_a_blank_file_is_refused(sent: Callable[..., Result]) -> None:
    result = sent(b"\n   \n\t\n")
    assert result.exit_code == 1
    assert "holds no transactions" in result.output


def test_empty_standard_input_is_refused(sent: Callable[..., Result]) -> None:
    result = sent(None, name="-", stdin=b"")
    assert result.exit_code == 1
    assert "standard input holds no transactions" in result.output


@pytest.mark.parametrize("apart", [False, True], ids=["adjacent", "apart"])
def test_a_repeated_transaction_id_names_both_lines(
    sent: Callable[..., Result], apart: bool
) -> None:
    items = _items(4)
    repeat = dict(items[0], stan="999999")
    lines = [items[0], items[1], items[2], repeat] if apart else [items[0], repeat, items[1]]

    result = sent(_lines(lines))

    assert result.exit_code == 1
    second = 4 if apart else 2
    assert (
        f"line {second}: transaction id '{items[0]['transactionId']}' is also on line 1"
        in result.output
    )


def test_a_repeated_id_holding_a_card_number_is_named_redacted(
    sent: Callable[..., Result],
) -> None:
    items = _items(2)
    for item in items:
        item["transactionId"] = f"tok_{CARD}"

    result = sent(_lines(items))

    assert result.exit_code == 1
    assert "line 2: transaction id 'tok_[card number]' is also on line 1" in result.output
    assert not contains_card_number(result.output)


def test_a_file_that_is_not_utf8_names_the_line(sent: Callable[..., Result]) -> None:
    items = _items(2)
    content = _lines(items) + '{"transactionId": "café"}\n'.encode("latin-1")

    result = sent(content)

    assert result.exit_code == 1
    assert "line 3: is not UTF-8 (byte 23 of the line); save the file as UTF-8" in result.output


def test_not_utf8_on_standard_input_names_the_line(sent: Callable[..., Result]) -> None:
    result = sent(None, name="-", stdin=b'{"transactionId": "\xff"}\n')
    assert result.exit_code == 1
    assert "standard input: 1 line cannot be sent" in result.output
    assert "line 1: is not UTF-8" in result.output


def test_a_utf8_byte_order_mark_is_accepted_and_the_rest_still_checked(
    sent: Callable[..., Result],
) -> None:
    # The mark is read past (a file saved by an editor that adds one is still UTF-8); the
    # repeated id after it shows the first line was read as an item.
    [item] = _items(1)
    result = sent(b"\xef\xbb\xbf" + _lines([item, item]))
    assert result.exit_code == 1
    assert "line 2: transaction id" in result.output
    assert "line 1" in result.output
    assert "not JSON" not in result.output


def test_a_record_over_dynamodbs_item_size_names_the_line(sent: Callable[..., Result]) -> None:
    items = _items(3)
    items[1]["merchantName"] = "x" * MAX_ITEM_BYTES

    result = sent(_lines(items))

    assert result.exit_code == 1
    assert f"line 2: transaction '{items[1]['transactionId']}' is " in result.output
    assert "over its limit of 409,600 bytes (400 KB)" in result.output


def test_lines_that_are_not_transaction_objects_are_each_named(
    sent: Callable[..., Result],
) -> None:
    [item] = _items(1)
    content = b"\n".join(
        [
            b"[1, 2]",
            b'"a string"',
            b'{"kind": "valid", "item": 5}',
            b'{"amount": 1}',
            b'{"transactionId": ""}',
            b'{"transactionId": "t-1", "n": NaN}',
            b'{"transactionId": "t-2", "n": 123456789012345678901234567890123456789012}',
            b"{not json",
            json.dumps({"kind": {"odd": 1}, "item": item}).encode(),
        ]
    )

    result = sent(content + b"\n")

    assert result.exit_code == 1
    assert "9 lines cannot be sent, nothing was sent" in result.output
    for expected in (
        "line 1: is an array, not a JSON object",
        "line 2: is a string, not a JSON object",
        "line 3: has an item that is a number, not a JSON object",
        "line 4: has no transactionId (a non-empty string)",
        "line 5: has no transactionId (a non-empty string)",
        "line 6: NaN is not a JSON number DynamoDB can store",
        "line 7: transaction 't-2': n has more than DynamoDB's 38 significant digits",
        "line 8: is not JSON: Expecting property name enclosed in double quotes (column 2)",
        "line 9: has kind that should be a string or null",
    ):
        assert expected in result.output


def test_a_long_list_of_problems_is_cut_short_with_a_count(
    sent: Callable[..., Result],
) -> None:
    result = sent(b"[]\n" * 25)
    assert result.exit_code == 1
    assert "25 lines cannot be sent" in result.output
    assert "line 10: is an array" in result.output
    assert "line 11:" not in result.output
    assert "... and 15 more" in result.output


@pytest.mark.parametrize(
    ("name", "expected"),
    [("missing.jsonl", "No such file or directory"), (".", "Is a directory")],
)
def test_a_missing_file_or_a_directory_is_a_usage_error(
    sent: Callable[..., Result], name: str, expected: str
) -> None:
    result = sent(None, name=name)
    assert result.exit_code == 2
    assert "Invalid value for 'SOURCE'" in result.output
    assert expected in result.output


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["generate", "-n", "0"], "Invalid value for '--count' / '-n': 0 is not in the range", 2),
        (["generate", "--start", "tomorrow"], "Invalid value for '--start'", 2),
        (["generate", "--seed", "x"], "'x' is not a valid integer", 2),
        # The output is opened when the first line is written (click's lazy file).
        (["generate", "-o", "no/such/dir/tx.jsonl"],
         "Could not open file 'no/such/dir/tx.jsonl': No such file or directory", 1),
        (["generate", "-o", "."], "Could not open file '.': Is a directory", 1),
        (["run", "-n", "-3"], "Invalid value for '--count' / '-n': -3 is not in the range", 2),
        (["run", "--reversal-rate", "2"], "Invalid value for '--reversal-rate'", 2),
        (["run", "--min-gap", "0"], "Invalid value for '--min-gap'", 2),
        (["run", "--atm-rate", "0.7", "--debit-pin-rate", "0.5"], "must not exceed 1", 2),
    ],
)  # fmt: skip
def test_bad_arguments_to_generate_and_run_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str, code: int
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".payments-local").exists()


# -- what the CLI prints ----------------------------------------------------------------


def _event(seen_at: float, detail_type: str, **detail: Any) -> dict[str, Any]:
    return {
        "seenAt": seen_at,
        "bus": "PaymentEvents",
        "source": "payments.posting",
        "detailType": detail_type,
        "detail": {"transactionId": detail.pop("tx", "tx-1"), **detail},
    }


def _write_log(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    (tmp_path / ".payments-local" / "default").mkdir(parents=True, exist_ok=True)
    (tmp_path / ".payments-local" / "default" / "events.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events)
    )


def _eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def test_events_show_amount_accounts_and_sides_of_each_posting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    purchase = {"processingCode": "000000", "panToken": f"tok_{CARD}"}
    account = {"accountId": "ACC-0014", "counterAccountId": "CLEARING-EUR"}
    _write_log(
        tmp_path,
        [
            _event(1.0, "TransactionApproved", transaction=purchase),
            _event(1.5, "AuthorizationHeld", postingStatus="POSTED", amount=_eur(561_139),
                   **account),
            _event(2.0, "ClearingMatched", postingStatus="POSTED", amount=_eur(561_239),
                   excess=100, final=True, **account),
            _event(2.5, "ReversalApplied", postingStatus="POSTED", appliedAs="CORRECTION",
                   amount=_eur(1_000), accountId="ACC-0014"),
            _event(3.0, "TransactionPosted", postingStatus="ALREADY_POSTED", direction="DEBIT",
                   amount=_eur(500), **account),
            _event(3.5, "HoldExpired", released=_eur(250), accountId="ACC-0014"),
            _event(4.0, "PostingFailed", reasonCode="ACCOUNT_FROZEN", amount=_eur(99),
                   accountId="ACC-0014"),
        ],
    )  # fmt: skip

    result = CliRunner().invoke(main, ["events", "tx-1"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "5,611.39 EUR held: debit ACC-0014, credit CLEARING-EUR (pending)" in lines[1]
    assert (
        "5,612.39 EUR cleared: debit ACC-0014, credit CLEARING-EUR (final, 1.00 EUR above "
        "the hold)" in lines[2]
    )
    # A reversal moves the money back: the cardholder is credited.
    assert "10.00 EUR reversed: credit ACC-0014, debit CLEARING-EUR" in lines[3]
    assert (
        "5.00 EUR posted: debit ACC-0014, credit CLEARING-EUR (a repeat: moved nothing)"
        in (lines[4])
    )
    assert "2.50 EUR hold expired on ACC-0014: pending released, nothing posted" in lines[5]
    assert "0.99 EUR not posted to ACC-0014 reasonCode='ACCOUNT_FROZEN'" in lines[6]
    assert "tok_" not in result.output  # never the card token


def test_a_refunds_hold_credits_the_cardholder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_log(
        tmp_path,
        [
            _event(1.0, "TransactionApproved", transaction={"processingCode": "200000"}),
            _event(2.0, "AuthorizationHeld", postingStatus="POSTED", amount=_eur(1_234),
                   accountId="ACC-0001", counterAccountId="CLEARING-EUR"),
        ],
    )  # fmt: skip
    result = CliRunner().invoke(main, ["events", "tx-1"])
    assert "12.34 EUR held: credit ACC-0001, debit CLEARING-EUR (pending)" in result.output


def test_events_of_an_unknown_id_point_to_the_summarys_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_log(tmp_path, [_event(1.0, "TransactionApproved")])
    result = CliRunner().invoke(main, ["events", CARD])
    assert result.exit_code == 1
    assert "no events for transaction [card number]" in result.output
    assert "example ids" in result.output


def _write_ledger(tmp_path: Path, entries: int, currency: str = "EUR") -> None:
    (tmp_path / ".payments-local" / "default").mkdir(parents=True, exist_ok=True)
    rows = [
        {"accountId": "ACC-1", "counterAccountId": "CLEARING", "transactionId": f"t-{n:03}",
         "amount": -561_139 * (n + 1), "currency": currency,
         "postedAt": f"2026-01-01T00:{n // 60:02}:{n % 60:02}+00:00"}
        for n in range(entries)
    ]  # fmt: skip
    balance = sum(int(r["amount"]) for r in rows)  # type: ignore[call-overload]
    (tmp_path / ".payments-local" / "default" / "ledger.json").write_text(
        json.dumps(
            {
                "balances": [
                    {"accountId": "ACC-1", "currency": currency, "posted": balance,
                     "available": balance},
                    {"accountId": "CLEARING", "currency": currency, "posted": -balance,
                     "available": -balance},
                ],
                "entries": rows,
            }
        )
    )  # fmt: skip


def test_balances_pages_its_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write_ledger(tmp_path, 133)
    runner = CliRunner()

    first = runner.invoke(main, ["balances", "ACC-1"])
    second = runner.invoke(main, ["balances", "ACC-1", "--page", "2"])
    last = runner.invoke(main, ["balances", "ACC-1", "--page", "7"])
    small = runner.invoke(main, ["balances", "ACC-1", "--limit", "50", "--page", "2"])

    assert first.exit_code == second.exit_code == last.exit_code == small.exit_code == 0
    assert first.output.count(" against ") == 20
    assert first.output.splitlines()[-1] == "entries 1-20 of 133; next: --page 2"
    assert "t-000" in first.output
    assert "t-020" not in first.output
    assert second.output.splitlines()[-1] == "entries 21-40 of 133; next: --page 3"
    assert "t-020" in second.output
    assert "t-040" not in second.output
    assert last.output.splitlines()[-1] == "entries 121-133 of 133 (last page)"
    assert last.output.count(" against ") == 13
    assert small.output.splitlines()[-1] == "entries 51-100 of 133; next: --page 3 --limit 50"
    # Money as -5,611.39 EUR; the balance line too.
    assert "  -5,611.39 EUR  t-000  against CLEARING" in first.output
    assert first.output.startswith("EUR  posted -50,003,096.29 EUR   available -50,003,096.29 EUR")


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["--page", "8"], "--page 8 is past the last page: 133 entries make 7 pages of 20", 2),
        (["--page", "0"], "Invalid value for '--page': 0 is not in the range x>=1", 2),
        (["--page", "two"], "Invalid value for '--page': 'two' is not a valid integer", 2),
        (["--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1", 2),
    ],
)
def test_bad_page_values_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str, code: int
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_ledger(tmp_path, 133)
    result = CliRunner().invoke(main, ["balances", "ACC-1", *args])
    assert result.exit_code == code
    assert expected in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("currency", "entry", "total"),
    [("JPY", "-561,139 JPY", "0 JPY"), ("BHD", "-561.139 BHD", "0.000 BHD")],
)
def test_amounts_follow_the_currencys_minor_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, currency: str, entry: str, total: str
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_ledger(tmp_path, 1, currency)
    runner = CliRunner()
    assert (
        f"  {entry}  t-000  against CLEARING" in runner.invoke(main, ["balances", "ACC-1"]).output
    )
    trial = runner.invoke(main, ["trial-balance"])
    assert trial.exit_code == 0
    assert trial.output == f"{currency}  {total}  balanced\n"


def test_a_damaged_ledger_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".payments-local" / "default").mkdir(parents=True)
    (tmp_path / ".payments-local" / "default" / "ledger.json").write_text("{half")
    for command in (["balances", "ACC-1"], ["trial-balance"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1
        assert "is not a ledger a run saved (not JSON)" in result.output


# -- the summary's example ids and the item size -----------------------------------------


def test_examples_are_the_first_ids_written_of_each_final_state() -> None:
    from payment_local.event_log import LoggedEvent

    def logged(tx: str, detail_type: str) -> LoggedEvent:
        return LoggedEvent(1.0, "bus", "payments.posting", detail_type, {"transactionId": tx})

    ids = [f"p-{n}" for n in range(5)] + ["q-1", "card-number-key-1", "redacted-key-42"]
    by_tx = {tx: [logged(tx, "TransactionPosted")] for tx in ids[:5]}
    by_tx["q-1"] = [logged("q-1", "TransactionQuarantined")]
    by_tx["redacted-key-42"] = [logged("redacted-key-42", "TransactionQuarantined")]

    assert state_examples(ids, by_tx) == {
        "posted": ["p-0", "p-1", "p-2"],
        "quarantined": ["q-1", "redacted-key-42"],
    }


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    # Strings: UTF-8 bytes; numbers: a byte per two significant digits plus one; lists and
    # maps: 3 bytes plus a byte per element.
    assert item_bytes({"id": "abc"}) == 2 + 3
    assert item_bytes({"é": "é"}) == 2 + 2
    assert value_bytes(12_345) == 3 + 1
    assert value_bytes(1_000_000) == 1 + 1  # trailing zeros trimmed
    assert value_bytes(-7) == 1 + 1 + 1
    assert value_bytes(True) == value_bytes(None) == 1
    assert value_bytes({"a": "xy", "b": [1, "z"]}) == 3 + (1 + 2 + 1) + (
        1 + (3 + 2 + 1 + 1 + 1) + 1
    )
