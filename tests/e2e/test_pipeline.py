"""The ingest slice end to end: a table write to one lifecycle event per transaction."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from payment_local.assembly import StackAssembly
from payment_local.cli import main
from payment_local.event_log import LoggedEvent
from payment_local.pipeline_run import run_transactions
from payment_local.report import build_report
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.event_names import EventName
from payment_posting_functions.domain.events import BY_NAME
from payment_posting_functions.domain.generator import Kind, Knobs, RuleBreak, TransactionGenerator
from tests.factories import TEST_PAN

pytestmark = pytest.mark.slow

HIGH_VALUE = 1_000_000
WATCHED_MCCS = {"7995", "6051", "4829"}
EXPECTED_REASON = {
    RuleBreak.MISSING_ISSUER_COUNTRY: "MISSING_ISSUER_COUNTRY",
    RuleBreak.ZERO_AMOUNT: "INVALID_AMOUNT",
    RuleBreak.FX_MISMATCH: "FX_MISMATCH",
}


def test_every_transaction_ends_in_exactly_the_terminal_state_it_should(
    runtime: LocalRuntime,
) -> None:
    knobs = Knobs(duplicate_rate=0.12, malformed_rate=0.08, rule_break_rate=0.08,
                  foreign_rate=0.3, high_value_rate=0.05)  # fmt: skip
    records = list(TransactionGenerator(knobs=knobs, seed=21).generate(200))
    kinds = Counter(r.kind for r in records)
    assert kinds[Kind.DUPLICATE] > 10
    assert kinds[Kind.MALFORMED] > 5
    assert sum(r.rule_break is not None for r in records) > 5

    # Held for review ends there here: decisions have tests of their own (test_review_decisions).
    result = run_transactions(runtime, records, decide_reviews=False)

    accounts = {a.account_id: a for a in sample_accounts()}
    by_tx = runtime.event_log.by_transaction
    for record in records:
        events = by_tx[record.transaction_id]
        names = [e.detail_type for e in events]
        terminal = [e for e in events if BY_NAME[e.detail_type].TERMINAL]
        assert len(terminal) == 1, f"{record.transaction_id}: {names}"
        outcome = terminal[0]
        assert names[0] == "TransactionAuthorized"
        if record.kind is Kind.MALFORMED:
            assert names == ["TransactionAuthorized", "TransactionQuarantined"]
            assert outcome.detail["reason"]
        elif record.kind is Kind.DUPLICATE:
            assert names == ["TransactionAuthorized", "DuplicateFlagged"]
            assert outcome.detail["duplicateOf"] == record.duplicate_of
        elif record.rule_break is not None:
            assert outcome.detail_type == "TransactionRejected"
            assert outcome.detail["reasonCode"] == EXPECTED_REASON[record.rule_break]
        else:
            item = record.item
            account = accounts.get(item["accountId"])
            if item["billingAmount"]["amount"] > HIGH_VALUE:
                assert (outcome.detail_type, outcome.detail["reasons"]) == (
                    "TransactionHeld", ["HIGH_VALUE"])  # fmt: skip
            elif account is not None and account.holds:
                assert (outcome.detail_type, outcome.detail["reasons"]) == (
                    "TransactionHeld", ["ACCOUNT_HOLD"])  # fmt: skip
            else:
                assert names[-2:] == ["TransactionApproved", "TransactionPosted"]
                posted = outcome.detail
                assert posted["postingStatus"] == "POSTED"
                assert posted["accountId"] == (account.account_id if account else "SUSPENSE-EUR")
                assert posted["counterAccountId"] == "CLEARING-EUR"
                assert posted["amount"] == item["billingAmount"]
            foreign = item["transactionAmount"]["currency"] != item["billingAmount"]["currency"]
            assert ("ForeignTransactionFound" in names) is foreign
            assert ("MerchantCategoryWarning" in names) is (item["mcc"] in WATCHED_MCCS)
            enrichment = by_name(events, "TransactionEnriched").detail["enrichment"]
            assert enrichment["accountFound"] is (account is not None)
            if account is None:
                assert enrichment["postingAccountId"] == "SUSPENSE-EUR"
    report = build_report(runtime, result, {}).data
    assert report["transactions"] == {"written": 200, "accounted": 200, "unaccounted": []}
    assert set(report["deadLetterQueues"].values()) == {0}
    posting = report["posting"]
    assert posting["posted"] == report["finalStates"]["posted"]
    assert posting["ledgerEntries"] == 2 * posting["posted"]  # double entry
    assert posting["trialBalance"] == {"EUR": 0}
    window = posting["trialBalanceReadAt"]
    assert window["from"] <= window["to"]
    assert window["to"].endswith("Z")


def test_no_clear_pan_reaches_the_bus_or_the_logs(runtime: LocalRuntime, tmp_path: Path) -> None:
    records = list(TransactionGenerator(knobs=Knobs(malformed_rate=0.5), seed=5).generate(60))
    assert any(r.item["panToken"] == TEST_PAN for r in records)

    run_transactions(runtime, records)

    assert TEST_PAN not in json.dumps([e.to_json() for e in runtime.event_log.events])
    assert runtime.function_log is not None
    runtime.function_log.flush()
    assert TEST_PAN not in (tmp_path / "functions.log").read_text()


def test_a_failing_dedup_store_sends_batches_to_the_dlq_and_loses_none(
    runtime: LocalRuntime,
) -> None:
    dedup_table = next(name for lid, name in runtime.topology.tables.items() if "Dedup" in lid)
    runtime.clients.dynamodb.delete_table(TableName=dedup_table)
    records = list(TransactionGenerator(knobs=Knobs(malformed_rate=0.0), seed=9).generate(25))

    result = run_transactions(runtime, records)

    report = build_report(runtime, result, {}).data
    assert report["transactions"]["accounted"] == 0
    [pipe_dlq] = [
        url for lid, url in runtime.topology.queues.items() if lid.startswith("IngestDeadLetter")
    ]
    located = 0
    while messages := runtime.clients.sqs.receive_message(
        QueueUrl=pipe_dlq, MaxNumberOfMessages=10
    ).get("Messages", []):
        for message in messages:
            located += json.loads(message["Body"])["batchSize"]
            runtime.clients.sqs.delete_message(
                QueueUrl=pipe_dlq, ReceiptHandle=message["ReceiptHandle"]
            )
    # Every record is located by a dead-letter message, split down to one record each.
    assert located == 25
    assert runtime.topology.pipes[0].stats.batches_dead_lettered == 25


def test_the_demo_command_reports_and_shows_a_lifecycle(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    report_path = tmp_path / "report.json"

    result = runner.invoke(
        main,
        ["run", "-n", "40", "--seed", "3", "--duplicate-rate", "0.2",
         "--cdk-out", str(assembly.directory), "--report", str(report_path)],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "Reached a final state       40   unaccounted 0" in result.output
    report = json.loads(report_path.read_text())
    assert report["reportVersion"] == 2
    assert report["transactions"]["accounted"] == 40
    assert sum(report["finalStates"].values()) == 40
    assert report["duplicates"]["flagged"] == report["duplicates"]["matchingGenerator"] > 0

    some_id = json.loads(
        (tmp_path / ".payments-local" / "default" / "events.jsonl").read_text().splitlines()[0]
    )["detail"]["transactionId"]
    lifecycle = runner.invoke(main, ["events", some_id])
    assert lifecycle.exit_code == 0, lifecycle.output
    assert "TransactionAuthorized" in lifecycle.output
    assert len(lifecycle.output.splitlines()) >= 2  # authorized, then where it went

    trial = runner.invoke(main, ["trial-balance"])
    assert trial.exit_code == 0, trial.output
    assert "EUR  0.00 EUR  balanced" in trial.output
    clearing = runner.invoke(main, ["balances", "CLEARING-EUR", "--limit", "100000"])
    assert clearing.exit_code == 0, clearing.output
    assert "EUR  posted" in clearing.output
    # One line per transfer with the scheme's side in euros: every money-moving outcome the
    # bus announced (a clearing above its hold books its excess as a second transfer).
    log = tmp_path / ".payments-local" / "default" / "events.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    moving = {EventName.TRANSACTION_POSTED, EventName.AUTHORIZATION_HELD,
              EventName.CLEARING_MATCHED, EventName.REVERSAL_APPLIED}  # fmt: skip
    transfers = sum(
        1 + (e["detail"].get("excess", 0) > 0)
        for e in events
        if e["detailType"] in moving
        and e["detail"].get("postingStatus") == "POSTED"
        and e["detail"]["amount"]["currency"] == "EUR"
    ) + sum(e["detailType"] == EventName.HOLD_EXPIRED for e in events)
    assert transfers > 0
    assert clearing.output.count(" against ") == transfers


def test_send_takes_a_generated_file(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    generated = runner.invoke(
        main, ["generate", "-n", "20", "--seed", "4", "--duplicate-rate", "0.3", "--with-kind"]
    )
    (tmp_path / "tx.jsonl").write_text(generated.output)

    result = runner.invoke(
        main, ["send", "tx.jsonl", "--cdk-out", str(assembly.directory), "--report", "r.json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["transactions"]["accounted"] == 20
    assert report["duplicates"]["flagged"] == report["duplicates"]["matchingGenerator"]


def test_a_missing_assembly_is_refused_with_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--cdk-out", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "run `make synth` first" in result.output


def test_a_failing_ledger_leaves_approved_transactions_in_the_dlq_and_loses_none(
    runtime: LocalRuntime,
) -> None:
    journal = runtime.output("LedgerJournalTableName")
    runtime.clients.dynamodb.delete_table(TableName=journal)
    knobs = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0, high_value_rate=0)
    records = list(TransactionGenerator(knobs=knobs, seed=13).generate(20))

    run_transactions(runtime, records, settle_steps=80)

    by_tx = runtime.event_log.by_transaction
    approved = {tx for tx, events in by_tx.items()
                if any(e.detail_type == "TransactionApproved" for e in events)}  # fmt: skip
    assert approved, "some transactions should reach posting"
    assert not any(e.detail_type == "TransactionPosted" for e in runtime.event_log.events)
    [dlq] = [url for lid, url in runtime.topology.queues.items()
             if lid.startswith("PostingDeadLetter")]  # fmt: skip
    waiting: set[str] = set()
    while messages := runtime.clients.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            waiting.add(json.loads(message["Body"])["detail"]["transactionId"])
            runtime.clients.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    # Every approved transaction waits in the dead-letter queue, ready for redrive.
    assert waiting == approved


def by_name(events: list[LoggedEvent], detail_type: str) -> LoggedEvent:
    return next(e for e in events if e.detail_type == detail_type)
