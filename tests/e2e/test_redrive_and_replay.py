"""Operating a local stack across commands: what a run left in a dead-letter queue is still
there for the next command, which redrives it, and a replay changes nothing it should not.

Each test breaks a part of the stack during a run (a table the template has is deleted, as
a failing dependency would), saves the state as the CLI does, and then uses the CLI as a
user would: the next command provisions the stack again (the table is back), restores the
state, and `redrive` hands the dead letters back.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from moto.sns.models import sns_backends

from payment_local.assembly import StackAssembly
from payment_local.cli import main
from payment_local.ledger_view import dump, ledger_of
from payment_local.operations.planes import LocalPlane
from payment_local.operations.replay import archive_of, choose_rules, replay_local
from payment_local.pipeline_run import run_transactions
from payment_local.runtime import LocalRuntime
from payment_local.state import LocalState
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator

pytestmark = pytest.mark.slow

CLEAN = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0, high_value_rate=0)


def _run_with_a_table_gone(
    assembly: StackAssembly, state: LocalState, table_hint: str, count: int, seed: int
) -> list[str]:
    """A run with one of the template's tables deleted; the state saved as `run` saves it."""
    state.start_fresh()
    with LocalRuntime(assembly) as runtime:
        [table] = [name for lid, name in runtime.topology.tables.items() if table_hint in lid]
        runtime.clients.dynamodb.delete_table(TableName=table)
        records = list(TransactionGenerator(knobs=CLEAN, seed=seed).generate(count))
        result = run_transactions(runtime, records, settle_steps=80, expire_holds=False,
                                  decide_reviews=False)  # fmt: skip
        ledger = ledger_of(runtime)
        state.save(
            runtime,
            ledger=dump(runtime, ledger) if ledger and table_hint != "Journal" else None,
            written=[{"id": tx} for tx in result.ids],
            command={"command": "run", "seed": seed},
        )
        return result.ids


def _cli(assembly: StackAssembly, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--cdk-out", str(assembly.directory)])
    assert result.exit_code == 0, result.output
    return result.output


def _status(assembly: StackAssembly) -> dict[str, int]:
    data = json.loads(_cli(assembly, "status", "--json"))
    return {q["name"]: q["visible"] for q in data["queues"] if q["dead_letter"]}


def test_a_pipe_batch_dead_lettered_in_one_command_is_reread_from_the_table_in_the_next(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state = LocalState()
    ids = _run_with_a_table_gone(assembly, state, "Dedup", count=12, seed=21)
    assert _status(assembly)["ingest"] > 0  # the batches' stream positions, not the records

    dry = _cli(assembly, "redrive", "ingest", "--dry-run")
    assert "re-read from the" in dry
    assert _status(assembly)["ingest"] > 0  # a dry run changes nothing

    output = _cli(assembly, "redrive", "ingest")

    assert f"of {len(ids)} transactions handed back, {len(ids)} have a final state" in output
    assert _status(assembly)["ingest"] == 0
    check = json.loads(_cli(assembly, "check", "--json"))
    assert check["noFinalState"] == []
    assert check["problems"] == []
    assert sum(check["finalStates"].values()) == len(ids)
    [record] = LocalState().audit_records()
    assert record["action"] == "redrive"
    assert record["handedBack"] > 0
    assert record["who"]
    assert record["at"]


def test_posting_dead_letters_are_posted_once_after_a_redrive_and_a_replay_changes_nothing(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state = LocalState()
    _run_with_a_table_gone(assembly, state, "Journal", count=16, seed=22)
    waiting = _status(assembly)["posting"]
    assert waiting > 0

    output = _cli(assembly, "redrive", "posting")

    assert f"posting: {waiting} messages; handed back {waiting} ({waiting} back to the queue)" in (
        output
    )
    after_redrive = json.loads(_cli(assembly, "check", "--json"))
    assert after_redrive["problems"] == []
    assert after_redrive["postedTwice"] == []
    posted = after_redrive["finalStates"]
    assert posted.get("posted", 0) + posted.get("authorization held", 0) >= waiting
    ledger_before = json.loads((tmp_path / ".payments-local/default/ledger.json").read_text())

    replayed = _cli(assembly, "replay", "--from", "1h")

    assert "state: COMPLETED" in replayed
    after_replay = json.loads(_cli(assembly, "check", "--json"))
    assert after_replay["finalStates"] == after_redrive["finalStates"]
    ledger_after = json.loads((tmp_path / ".payments-local/default/ledger.json").read_text())
    assert ledger_after["balances"] == ledger_before["balances"]
    assert len(ledger_after["entries"]) == len(ledger_before["entries"])
    assert [r["action"] for r in LocalState().audit_records()] == ["redrive", "replay"]


def test_a_replay_notifies_nobody_twice(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates and rejections notify people; their replay publishes again, silently."""
    knobs = Knobs(duplicate_rate=0.3, rule_break_rate=0.3, malformed_rate=0)
    records = list(TransactionGenerator(knobs=knobs, seed=23).generate(20))
    with LocalRuntime(assembly) as runtime:
        run_transactions(runtime, records, expire_holds=False, decide_reviews=False)
        backend = sns_backends[runtime.environment.account][runtime.environment.region]

        def sent() -> Counter[str]:
            return Counter(
                {arn: len(topic.sent_notifications) for arn, topic in backend.topics.items()}
            )

        before = sent()
        assert sum(before.values()) > 0, "the run should notify someone"
        plane = LocalPlane(runtime, "test")
        _, bus = archive_of(plane)
        result = replay_local(
            plane,
            start=datetime.fromtimestamp(0, UTC),
            end=datetime.now(UTC),
            rules=choose_rules(plane, bus, [], []),
            dry_run=False,
        )
        assert result.deliveries
        assert result.deliveries > 0
        assert sent() == before


def test_replaying_authorizations_leaves_decided_reviews_decided(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay of the roots re-derives what follows an authorization; a person's decision on
    a held transaction is not undone by it: no second hold, no second review to take."""
    monkeypatch.chdir(tmp_path)
    _cli(assembly, "run", "-n", "60", "--seed", "5")
    before = json.loads(_cli(assembly, "check", "--json"))
    events = [
        json.loads(line)
        for line in (tmp_path / ".payments-local/default/events.jsonl").read_text().splitlines()
    ]
    assert any(e["detailType"] == "ReviewDecided" for e in events), "the run decided no review"

    replayed = _cli(assembly, "replay", "--from", "1h", "--detail-type", "TransactionAuthorized")

    assert "state: COMPLETED" in replayed
    after = json.loads(_cli(assembly, "check", "--json"))
    assert after["finalStates"] == before["finalStates"]
    assert after["waitingForReview"] == before["waitingForReview"]
    assert after["problems"] == []
    assert after["postedTwice"] == []
