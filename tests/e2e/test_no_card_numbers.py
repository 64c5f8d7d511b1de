"""No card number leaves a run: not in an event, a log line, a table, a report or CLI output.

Records are written with card numbers hidden in every field that can hold text or an id
(whole, prefixed, suffixed, in the key, as an unknown field and as a field's name), among
generated traffic. The detector is ``domain.pan``'s one definition; it must also be quiet on a
clean run, or nobody would keep it switched on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from payment_local.assembly import StackAssembly
from payment_local.cli import main
from payment_local.pipeline_run import LabelledRecord, run_transactions
from payment_local.report import build_report
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator
from payment_posting_functions.domain.pan import card_number_spans
from tests.factories import valid_item

pytestmark = pytest.mark.slow

# Test numbers of three schemes and lengths: Visa 16, American Express 15, Diners Club 14.
CARDS = ("4111111111111111", "378282246310005", "36227206271667")
QUARANTINE_OUTPUT = "QuarantineTableName"
TRANSACTIONS_OUTPUT = "TransactionsTableName"


def _hidden(card: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what was hidden where, the record) for one card number, one place at a time."""
    shapes = {"whole": card, "prefixed": f"x_{card}", "suffixed": f"{card}-z"}
    for field in ("transactionId", "panToken", "accountId", "merchantId"):
        for shape, value in shapes.items():
            yield f"{field} {shape}", {field: value}
    yield "unknown field", {"note": f"card {card[:4]} {card[4:8]} {card[8:12]} {card[12:]}"}
    yield "field name", {card: "x"}


def poisoned_records() -> list[dict[str, Any]]:
    records = []
    for number, card in enumerate(CARDS):
        for index, (_, fields) in enumerate(_hidden(card)):
            item = valid_item(
                transactionId=f"tx-hidden-{number}-{index:03d}",
                stan=f"{number}{index:05d}",
                rrn=f"{number}{index:011d}",
            )
            item.update(fields)
            records.append(item)
    return records


def found_in(text: str) -> list[str]:
    """Where card numbers are in ``text``: the surrounding characters, with the digits hidden."""
    return [
        f"...{text[max(0, start - 20) : start]}<{end - start} digits>{text[end : end + 20]}..."
        for start, end in card_number_spans(text)
    ]


def _scan(runtime: LocalRuntime, output: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        boto3.resource("dynamodb").Table(runtime.output(output)).scan()["Items"]
    )
    return items


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, default=str) + "\n" for r in records)


def test_the_hidden_records_do_hide_card_numbers() -> None:
    # The test is only as good as its input: every record carries at least one card number.
    for record in poisoned_records():
        assert found_in(json.dumps(record)), record["transactionId"]


def test_no_card_number_leaves_the_pipeline_and_every_record_ends_once(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    clean = list(TransactionGenerator(knobs=Knobs(duplicate_rate=0.2), seed=21).generate(40))
    poisoned = poisoned_records()
    result = run_transactions(runtime, [*clean, *(_as_input(item) for item in poisoned)])

    report = build_report(runtime, result, {})
    assert report.unaccounted == []
    assert report.data["transactions"]["accounted"] == len(clean) + len(poisoned)
    # Every poisoned record was refused; none reached the rules, let alone the ledger.
    assert report.data["quarantine"]["count"] >= len(poisoned)

    events = json.dumps([event.to_json() for event in runtime.event_log.events])
    assert found_in(events) == []
    assert runtime.function_log is not None
    runtime.function_log.flush()
    assert found_in((tmp_path / "functions.log").read_text()) == []
    assert found_in(report.to_json()) == []
    assert found_in(report.to_text()) == []
    # The tables: refused records left the transactions table for the quarantine, without
    # the values that were refused.
    assert found_in(json.dumps(_scan(runtime, TRANSACTIONS_OUTPUT), default=str)) == []
    quarantined = _scan(runtime, QUARANTINE_OUTPUT)
    assert len(quarantined) >= len(poisoned)
    assert found_in(json.dumps(quarantined, default=str)) == []
    for output in ("LedgerJournalTableName", "LedgerBalancesTableName"):
        items = boto3.resource("dynamodb").Table(runtime.output(output)).scan()["Items"]
        assert found_in(json.dumps(items, default=str)) == [], output


def test_the_cli_prints_and_stores_no_card_number(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tx.jsonl").write_text(_jsonl(poisoned_records()))
    runner = CliRunner()

    sent = runner.invoke(
        main, ["send", "tx.jsonl", "--cdk-out", str(assembly.directory), "--report", "r.json"]
    )
    asked = runner.invoke(main, ["events", CARDS[0]])  # a user typing a card number

    assert sent.exit_code == 0, sent.output
    assert asked.exit_code != 0
    outputs = {"send": sent.output, "events": asked.output}
    outputs |= {
        str(path.relative_to(tmp_path)): path.read_text()
        for path in (tmp_path / "r.json", *_state_files(tmp_path))
    }
    assert {name: found_in(text) for name, text in outputs.items() if found_in(text)} == {}


def test_quiet_on_a_clean_run(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timestamps, fingerprints, UUIDs, sequence numbers, generated ids: none may look like one.
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    result = runner.invoke(
        main,
        ["run", "-n", "60", "--seed", "8", "--cdk-out", str(assembly.directory),
         "--report", "r.json"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    outputs = {"run": result.output, "r.json": (tmp_path / "r.json").read_text()}
    outputs |= {
        str(path.relative_to(tmp_path)): path.read_text() for path in _state_files(tmp_path)
    }
    assert {name: found_in(text) for name, text in outputs.items() if found_in(text)} == {}


def _as_input(item: dict[str, Any]) -> LabelledRecord:
    return LabelledRecord(item=json.loads(json.dumps(item), parse_float=Decimal))


def _state_files(root: Path) -> list[Path]:
    """Every file the local state keeps (tables, queues, archive, logs, ledger, audit)."""
    return sorted(path for path in (root / ".payments-local").rglob("*") if path.is_file())
