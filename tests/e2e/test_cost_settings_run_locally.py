"""The cost reductions behave locally as on AWS (docs/adr/0023-cost-reductions.md): the
archive keeps only the events a replay starts from, and the functions' log keeps the stage's
level (a level that would drop the metrics is refused at synth: tests/infra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from payment_local.assembly import StackAssembly
from payment_local.cli import main
from payment_posting_functions.domain.event_names import EventSource

pytestmark = pytest.mark.slow

STATE = Path(".payments-local", "default")


def _run(assembly: StackAssembly, seed: int) -> None:
    result = CliRunner().invoke(
        main, ["run", "-n", "25", "--seed", str(seed), "--cdk-out", str(assembly.directory)]
    )
    assert result.exit_code == 0, result.output


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _levels(log: Path) -> set[str]:
    return {
        json.loads(line)["level"]
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"level"' in line
    }


def test_the_archive_keeps_the_roots_and_the_bus_carries_the_rest(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _run(assembly, seed=41)

    archived = {record["event"]["source"] for record in _jsonl(STATE / "archives.jsonl")}
    roots = {EventSource.INGEST.value, EventSource.REVIEW.value, EventSource.OPERATIONS.value}
    assert EventSource.INGEST.value in archived
    assert archived <= roots
    published = {event["source"] for event in _jsonl(STATE / "events.jsonl")}
    assert {EventSource.RULES.value, EventSource.POSTING.value} <= published
    levels = _levels(STATE / "functions.log")
    assert levels, "the functions' log is empty: their lines went elsewhere"
    assert "DEBUG" not in levels  # the dev stage logs at INFO

    # A replay to a rule that takes derived events only is refused, saying what to replay.
    refused = CliRunner().invoke(
        main, ["replay", "--from", "1h", "--detail-type", "TransactionApproved",
               "--cdk-out", str(assembly.directory)],
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "the archive keeps only events of payments.ingest" in refused.output
    assert "--detail-type TransactionAuthorized" in refused.output
    assert "Traceback" not in refused.output
