"""Faults on demand (payment_local/faults.py, ADR 0021): specs a user types, and runs of the
real stack with each fault, checked as a user reads the summary: retries happened, messages
past maxReceiveCount reached the dead-letter queue, every transaction has one outcome or waits
there, nothing was posted twice, and the books balance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from payment_local.assembly import StackAssembly
from payment_local.cli import main
from payment_local.faults import FaultPlan, FaultSpec, FaultSpecError, parse_fault
from payment_local.pipeline_run import run_transactions
from payment_local.report import RunReport, build_report, run_failures
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import TransactionGenerator
from payment_stack.stack import POSTING_CONTEXT_KEY
from tests.e2e.conftest import synth_dev

COUNT = 40
POSTING_DLQ = "PostingDeadLetterQueue319E3CFB"
POSTER = "PostingPosterFunctionBCC3C3A3"
OUTCOMES = {"TransactionPosted", "AuthorizationHeld", "ClearingMatched", "ReversalApplied"}

# -- specs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("posting:5xx:rate=0.2", FaultSpec("posting:5xx", rate=0.2)),
        ("posting:429:first=10", FaultSpec("posting:429", first=10)),
        ("posting:timeout:first=5", FaultSpec("posting:timeout", first=5)),
        ("posting:crash-after-write:first=3", FaultSpec("posting:crash-after-write", first=3)),
        (" ledger:throttle:rate=1 ", FaultSpec("ledger:throttle", rate=1.0)),
    ],
)
def test_a_spec_names_a_kind_and_how_often(text: str, expected: FaultSpec) -> None:
    assert parse_fault(text) == expected
    assert parse_fault(str(expected)) == expected  # what the report prints reads back


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("posting:5xx", "says not how often"),
        ("posting:503:rate=0.2", "unknown fault 'posting:503'"),
        ("ledger:5xx:first=1", "unknown fault"),
        ("posting:5xx:rate=0", "rate= takes a number in (0, 1]"),
        ("posting:5xx:rate=1.5", "rate= takes a number in (0, 1]"),
        ("posting:5xx:rate=often", "rate= takes a number"),
        ("posting:5xx:first=0", "first= takes a whole number >= 1"),
        ("posting:5xx:first=-2", "first= takes a whole number"),
        ("posting:5xx:first=2.5", "first= takes a whole number"),
        ("posting:5xx:first=1:rate=0.5", "bad fault spec"),
        ("", "bad fault spec"),
    ],
)
def test_a_bad_spec_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_fault(text)
    assert says in str(raised.value)


def test_one_fault_per_kind() -> None:
    with pytest.raises(FaultSpecError, match="given twice"):
        FaultPlan.parse(["posting:5xx:rate=0.1", "posting:5xx:first=3"])


def test_a_rate_is_repeatable_with_its_seed() -> None:
    def draws(seed: int) -> list[bool]:
        plan = FaultPlan.parse(["posting:5xx:rate=0.3"], seed)
        return [plan.fires("posting:5xx") for _ in range(200)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert 30 < sum(draws(1)) < 90  # about 0.3 of 200


def test_first_n_fails_exactly_the_first_n() -> None:
    plan = FaultPlan.parse(["posting:429:first=3"])
    assert [plan.fires("posting:429") for _ in range(6)] == [True] * 3 + [False] * 3
    assert plan.injected() == {"posting:429": 3}
    assert plan.chances() == {"posting:429": 6}
    assert not plan.fires("posting:5xx")  # a kind not asked for never fires


@pytest.mark.parametrize("command", [["run", "-n", "5"], ["send", "-"]])
def test_the_cli_refuses_a_bad_spec_without_a_traceback(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--fault", "posting:5xx:rate=2"], input="")
    assert result.exit_code == 2
    assert "Invalid value for '--fault'" in result.output
    assert "rate= takes a number in (0, 1]" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, FaultSpecError)


# -- runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger_assembly(tmp_path_factory: pytest.TempPathFactory) -> StackAssembly:
    return synth_dev(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def http_assembly(tmp_path_factory: pytest.TempPathFactory) -> StackAssembly:
    return synth_dev(tmp_path_factory.mktemp("cdk.out.http"), **{POSTING_CONTEXT_KEY: "http"})


def _run(
    assembly: StackAssembly, tmp_path: Path, *faults: str, count: int = COUNT
) -> tuple[RunReport, dict[str, Any], list[dict[str, Any]]]:
    records = list(TransactionGenerator(seed=11).generate(count))
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(assembly, function_log=log, faults=FaultPlan.parse(faults, 5)) as runtime,
    ):
        result = run_transactions(runtime, records)
        report = build_report(runtime, result, {"count": count})
        core = dict(runtime.core_banking.state.postings) if runtime.core_banking is not None else {}
        outcomes = [e.detail for e in runtime.event_log.events if e.detail_type in OUTCOMES]
    return report, core, outcomes


def _assert_exact(report: RunReport) -> dict[str, Any]:
    """Nothing lost (each transaction has an outcome or waits in a dead-letter queue),
    nothing posted twice, no transaction answered two ways, and books that balance."""
    faults: dict[str, Any] = report.data["faults"]
    assert set(report.unaccounted) <= set(faults["deadLettered"])
    assert faults["transfersBookedTwice"] == []
    assert faults["differentOutcomes"] == []
    ledger = report.data["ledger"]
    if ledger is not None:
        assert ledger["problems"] == []
        assert ledger["trialBalances"]
        assert all(t["posted"] == 0 and t["balanced"] for t in ledger["trialBalances"].values())
    assert run_failures(report) == []
    return faults


@pytest.mark.slow
def test_every_ledger_call_failing_sends_the_postings_to_the_dead_letter_queue(
    ledger_assembly: StackAssembly, tmp_path: Path
) -> None:
    report, _, _ = _run(ledger_assembly, tmp_path, "posting:5xx:rate=1")
    faults = _assert_exact(report)
    assert faults["injected"]["posting:5xx"] == faults["chances"]["posting:5xx"] > 0
    retries = faults["retries"]
    assert retries["botocoreRetries"] > 0  # botocore retried InternalServerError as the SDK does
    assert retries["functionErrors"][POSTER] > 0
    # maxReceiveCount 5: every approved transaction was received five times, then moved.
    assert retries["receivesBeyondFirst"] >= 4 * len(faults["deadLettered"])
    assert faults["deadLetterArrivals"] == {POSTING_DLQ: len(faults["deadLettered"])}
    assert faults["deadLettered"]
    assert report.unaccounted
    assert report.data["posting"]["ledgerEntries"] == 0
    assert f"{len(faults['deadLettered'])} transactions wait there" in report.to_text()


@pytest.mark.slow
def test_throttling_is_retried_and_nothing_is_lost(
    ledger_assembly: StackAssembly, tmp_path: Path
) -> None:
    report, _, _ = _run(
        ledger_assembly, tmp_path, "posting:429:first=25", "ledger:throttle:rate=0.2"
    )
    faults = _assert_exact(report)
    assert faults["injected"]["posting:429"] == 25
    assert faults["injected"]["ledger:throttle"] > 0
    assert faults["retries"]["botocoreRetries"] > 0
    assert faults["retries"]["backoffNotSleptSeconds"] > 0
    assert report.unaccounted == []  # retries absorbed them: no dead letter
    assert report.data["posting"]["ledgerEntries"] > 0


@pytest.mark.slow
def test_a_timed_out_poster_leaves_its_writes_and_the_redelivery_posts_nothing_again(
    ledger_assembly: StackAssembly, tmp_path: Path
) -> None:
    report, _, _ = _run(ledger_assembly, tmp_path, "posting:timeout:first=3")
    faults = _assert_exact(report)
    assert faults["injected"] == {"posting:timeout": 3}
    assert faults["retries"]["functionErrors"] == {POSTER: 3}
    assert faults["retries"]["receivesBeyondFirst"] > 0
    assert report.unaccounted == []
    assert faults["deadLetterArrivals"] == {}


@pytest.mark.slow
def test_a_crash_after_the_write_is_answered_from_the_idempotency_record(
    ledger_assembly: StackAssembly, tmp_path: Path
) -> None:
    report, _, _ = _run(ledger_assembly, tmp_path, "posting:crash-after-write:first=3")
    faults = _assert_exact(report)
    assert faults["retries"]["functionErrors"] == {POSTER: 3}
    assert faults["retries"]["receivesBeyondFirst"] > 0
    assert report.unaccounted == []
    # The crashed batches had published their outcomes; the redelivery publishes the saved
    # events again, identical (at least once: ADR 0007).
    assert sum(faults["repeatedEvents"].values()) > 0
    assert set(faults["repeatedEvents"]) <= {"TransactionPosted", "AuthorizationHeld",
                                             "ClearingMatched", "ReversalApplied",
                                             "PostingFailed"}  # fmt: skip


@pytest.mark.slow
def test_the_core_system_refusing_and_answering_late_over_http(
    http_assembly: StackAssembly, tmp_path: Path
) -> None:
    report, core, outcomes = _run(
        http_assembly, tmp_path, "posting:5xx:first=6", "posting:429:first=4",
        "posting:timeout:first=2", count=30,
    )  # fmt: skip
    faults = _assert_exact(report)
    assert faults["injected"] == {"posting:5xx": 6, "posting:429": 4, "posting:timeout": 2}
    assert faults["retries"]["receivesBeyondFirst"] >= 10  # each 503 and 429 returned one
    assert report.unaccounted == []
    # A late answer was booked; the client's retry (same Idempotency-Key) heard 409.
    assert any(o["postingStatus"] == "ALREADY_POSTED" for o in outcomes)
    # The core system holds one posting per transaction that got an outcome, none twice.
    assert len(core) == len({o["transactionId"] for o in outcomes}) > 0
