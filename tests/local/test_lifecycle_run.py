"""The run's later phases on a pipeline in miniature: review decisions sent and their
outcomes awaited (only when a rule takes them), holds let expire by moving the runtime's
clock, and the report's ledger check. The real stack's run is tests/e2e's."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from payment_local.assembly import StackAssembly
from payment_local.ledger_view import BALANCES_TABLE_OUTPUT, ledger_of
from payment_local.pipeline_run import (
    LabelledRecord,
    has_outcome,
    in_flight_window,
    review_bus,
    run_transactions,
)
from payment_local.report import build_report, run_failures
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.card_message import LONG_HOLD_SECONDS
from payment_posting_functions.domain.events import ReviewDecided, ReviewDecision
from payment_posting_functions.domain.ledger_v2.dynamodb import table_definitions
from payment_posting_functions.domain.ledger_v2.house import clearing_account
from payment_posting_functions.domain.ledger_v2.model import Transfer, TransferKind
from payment_posting_functions.domain.money import Money
from tests.local.support import HANDLERS, PROJECT_ROOT

CODE_HASH = "11fe" * 16
BUS_NAME = "lifecycle-test"
HANDLER_FILE = Path("tests", "local", "fixture_handlers.py")
REVIEWS = {"source": ["payments.review"], "detail-type": ["ReviewDecided"]}
DAY = 24 * 3600


def _function(handler: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "assets", "S3Key": f"{CODE_HASH}.zip"},
            "Handler": f"{HANDLERS}.{handler}",
            "Runtime": "python3.11",
            "Timeout": 30,
            "Environment": {"Variables": {"BUS_NAME": BUS_NAME, **(environment or {})}},
        },
    }


def _table(keys: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in keys],
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": "S"} for name, _ in keys
            ],
            "BillingMode": "PAY_PER_REQUEST",
            **extra,
        },
    }


def _template(
    *,
    review_target: str | None = "decide_review",
    review_pattern: dict[str, Any] | None = None,
    ledger: bool = False,
    announce_expiries: bool = True,
) -> dict[str, Any]:
    """A transactions table whose records publish the events they list (the pipeline in
    miniature), with a rule taking review decisions, and the built-in ledger's tables and
    its scheduled expiry sweeper, as asked."""
    resources: dict[str, Any] = {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": BUS_NAME}},
        "Transactions": _table(
            [("transactionId", "HASH")], StreamSpecification={"StreamViewType": "NEW_IMAGE"}
        ),
        "Publisher": _function("publish_listed_events"),
        "Pipe": {
            "Type": "AWS::Pipes::Pipe",
            "Properties": {
                "Source": {"Fn::GetAtt": ["Transactions", "StreamArn"]},
                "Target": {"Fn::GetAtt": ["Bus", "Arn"]},
                "Enrichment": {"Fn::GetAtt": ["Publisher", "Arn"]},
                "SourceParameters": {
                    "DynamoDBStreamParameters": {"StartingPosition": "LATEST", "BatchSize": 10}
                },
            },
        },
    }
    outputs: dict[str, Any] = {"TransactionsTableName": {"Value": {"Ref": "Transactions"}}}
    if review_target is not None:
        resources["Reviewer"] = _function(review_target)
        resources["ReviewRule"] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Ref": "Bus"},
                "EventPattern": review_pattern or REVIEWS,
                "State": "ENABLED",
                "Targets": [{"Arn": {"Fn::GetAtt": ["Reviewer", "Arn"]}, "Id": "Reviewer"}],
            },
        }
    if ledger:
        journal, balances = table_definitions("journal", "balances")
        for name, definition in (("Journal", journal), ("Balances", balances)):
            props = {k: v for k, v in definition.items() if k != "TableName"}
            resources[name] = {"Type": "AWS::DynamoDB::Table", "Properties": props}
        resources["Sweeper"] = _function(
            "sweep_and_announce",
            {
                "JOURNAL_TABLE": {"Ref": "Journal"},
                "BALANCES_TABLE": {"Ref": "Balances"},
                "ANNOUNCE": "true" if announce_expiries else "false",
            },
        )
        resources["SweepSchedule"] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "ScheduleExpression": "rate(1 minute)",
                "State": "ENABLED",
                "Targets": [{"Arn": {"Fn::GetAtt": ["Sweeper", "Arn"]}, "Id": "Sweeper"}],
            },
        }
        outputs["LedgerJournalTableName"] = {"Value": {"Ref": "Journal"}}
        outputs["LedgerBalancesTableName"] = {"Value": {"Ref": "Balances"}}
    return {"Resources": resources, "Outputs": outputs}


@pytest.fixture
def staged_code(tmp_path: Path) -> Path:
    asset = tmp_path / f"asset.{CODE_HASH}"
    (asset / HANDLER_FILE).parent.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / HANDLER_FILE, asset / HANDLER_FILE)
    return asset


def _started(tmp_path: Path, staged_code: Path, template: dict[str, Any]) -> LocalRuntime:
    assembly = StackAssembly(
        directory=tmp_path, stack_name="T", template=template, assets={CODE_HASH: staged_code}
    )
    # The miniature has no policies to check: what is tested is the run, not access.
    return LocalRuntime(assembly, enforce_access=False)


@pytest.fixture
def start(tmp_path: Path, staged_code: Path) -> Iterator[Any]:
    running: list[LocalRuntime] = []

    def started(**template: Any) -> LocalRuntime:
        runtime = _started(tmp_path, staged_code, _template(**template)).__enter__()
        running.append(runtime)
        return runtime

    yield started
    for runtime in running:
        runtime.__exit__(None, None, None)


def _event(detail_type: str, tx: str, source: str, **detail: Any) -> dict[str, Any]:
    return {"source": source, "detailType": detail_type, "detail": {"transactionId": tx, **detail}}


def _record(tx: str, *events: dict[str, Any], label: str | None = None) -> LabelledRecord:
    authorized = _event("TransactionAuthorized", tx, "payments.ingest", screening={"valid": True})
    return LabelledRecord(
        item={"transactionId": tx, "events": json.dumps([authorized, *events])},
        kind_label="valid",
        lifecycle_label=label,
    )


def _held(tx: str) -> LabelledRecord:
    held = _event("TransactionHeld", tx, "payments.rules", reasons=["HIGH_VALUE"])
    return _record(tx, held, label="authorization (never cleared)")


def _posted(tx: str) -> LabelledRecord:
    posted = _event(
        "TransactionPosted",
        tx,
        "payments.posting",
        postingStatus="POSTED",
        messageClass="FINANCIAL",
        amount={"amount": 1250, "currency": "EUR"},
    )
    return _record(tx, posted, label="debit pin (posted)")


# -- review decisions -------------------------------------------------------------------


def test_some_held_transactions_are_decided_and_each_decision_awaited(start: Any) -> None:
    runtime = start()
    records = [_held("held-0001"), _posted("posted-0001"), _held("held-0002"),
               _held("held-0003"), _held("held-0004")]  # fmt: skip

    result = run_transactions(runtime, records)

    # In the order written: approve, decline, leave waiting, approve.
    assert result.reviews_taken is True
    assert result.review_decisions == {
        "held-0001": ReviewDecision.APPROVE,
        "held-0002": ReviewDecision.DECLINE,
        "held-0004": ReviewDecision.APPROVE,
    }
    by_tx = runtime.event_log.by_transaction
    for tx, decision in result.review_decisions.items():
        [sent] = [e for e in by_tx[tx] if e.detail_type == "ReviewDecided"]
        assert sent.source == "payments.review"
        assert ReviewDecided.model_validate(sent.detail).decision is decision
    assert [e.detail_type for e in by_tx["held-0002"]][-2:] == [
        "ReviewDecided",
        "TransactionRejected",
    ]
    report = build_report(runtime, result, {})
    assert report.data["transactions"] == {"written": 5, "accounted": 5, "unaccounted": []}
    assert report.data["finalStates"] == {"posted": 3, "rejected": 1, "held for review": 1}
    # Ids to follow with `payments-local events`: the first (at most 3) of each, as written.
    assert report.data["finalStateExamples"] == {
        "posted": ["held-0001", "posted-0001", "held-0004"],
        "rejected": ["held-0002"],
        "held for review": ["held-0003"],
    }
    assert report.data["reviews"] == {
        "taken": True,
        "sent": {"APPROVE": 2, "DECLINE": 1},
        "outcomes": {"APPROVE -> posted": 2, "DECLINE -> rejected DECLINED_IN_REVIEW": 1},
        "notDecided": 1,
    }
    assert report.data["ledger"] is None
    assert result.holds_expired_as_of is None  # no built-in ledger: no time let pass
    text = report.to_text()
    assert "Review decisions             3   (approve 2, decline 1; 1 held left waiting)" in text
    assert "  rejected                          1   e.g. held-0002" in text
    assert "authorization (never cleared) -> rejected DECLINED_IN_REVIEW" in text
    assert run_failures(report) == []


def test_no_decision_is_sent_to_a_stack_without_a_rule_for_it(start: Any) -> None:
    runtime = start(review_target=None)

    result = run_transactions(runtime, [_held("held-0001"), _held("held-0002")])

    assert result.reviews_taken is False
    assert result.review_decisions == {}
    assert not [e for e in runtime.event_log.events if e.detail_type == "ReviewDecided"]
    report = build_report(runtime, result, {})
    assert report.data["transactions"]["unaccounted"] == []
    assert "not sent: no rule of the stack takes ReviewDecided (2 held" in report.to_text()


def test_a_decision_nobody_answers_leaves_its_transaction_unaccounted(start: Any) -> None:
    runtime = start(review_target="ignore_review")

    result = run_transactions(runtime, [_held("held-0001"), _held("held-0002")], settle_steps=5)

    assert set(result.review_decisions) == {"held-0001", "held-0002"}
    report = build_report(runtime, result, {})
    assert report.unaccounted == ["held-0001", "held-0002"]
    assert report.data["reviews"]["outcomes"] == {
        "APPROVE -> no outcome yet": 1, "DECLINE -> no outcome yet": 1}  # fmt: skip
    assert any("2 transactions have no lifecycle event" in p for p in run_failures(report))


@pytest.mark.parametrize(
    ("pattern", "takes_decisions"),
    [
        (REVIEWS, True),
        ({"source": ["payments.review"]}, True),
        ({"source": ["payments.review"], "detail": {"decision": ["APPROVE"]}}, False),
        ({"source": ["payments.rules"], "detail-type": ["ReviewDecided"]}, False),
    ],
)
def test_decisions_go_only_where_a_rule_takes_each_of_them(
    start: Any, pattern: dict[str, Any], takes_decisions: bool
) -> None:
    runtime = start(review_pattern=pattern)
    assert review_bus(runtime) == (BUS_NAME if takes_decisions else None)


def test_a_later_message_that_overtakes_the_one_before_it_is_reported(start: Any) -> None:
    runtime = start(review_target=None)

    def message(tx: str, detail_type: str, follows: str | None = None) -> LabelledRecord:
        record = _record(tx, _event(detail_type, tx, "payments.posting", postingStatus="POSTED"))
        return dataclasses.replace(record, follows=follows)

    # Two card transactions: one in order; in the other the clearing comes first.
    records = [
        message("auth-1", "AuthorizationHeld"),
        message("clearing-2", "ClearingMatched", follows="auth-2"),
        message("clearing-1", "ClearingMatched", follows="auth-1"),
        message("auth-2", "AuthorizationHeld"),
    ]

    result = run_transactions(runtime, records)

    report = build_report(runtime, result, {})
    assert report.data["lifecycleOrder"] == {
        "pairs": 2,
        "overtook": 1,
        "overtaking": ["clearing-2"],
    }
    assert (
        "later messages in order          2   (reached their outcome after the message "
        "before them; 1 overtook it)" in report.to_text()
    )


# -- holds expiring, and the ledger check -------------------------------------------------


def _hold(pending_id: str, amount: int, timeout_s: int, account: str = "CARD-1") -> Transfer:
    return Transfer(
        transfer_id=pending_id,
        kind=TransferKind.PENDING,
        debit_account_id=account,
        credit_account_id=clearing_account("EUR"),
        amount=Money(amount=amount, currency="EUR"),
        timeout_s=timeout_s,
    )


def _held_in_ledger(runtime: LocalRuntime) -> list[LabelledRecord]:
    """Holds of five authorizations: two never cleared (a week's and a hotel's month), one
    cleared in part, one voided, one cleared; each announced by its AuthorizationHeld."""
    ledger = ledger_of(runtime)
    assert ledger is not None
    ledger.open_account("CARD-1", "EUR", credit_limit=1_000_000)
    holds = {"auth-1": 7 * DAY, "auth-2": LONG_HOLD_SECONDS, "auth-3": 7 * DAY,
             "auth-4": 7 * DAY, "auth-5": 7 * DAY}  # fmt: skip
    for pending_id, timeout in holds.items():
        ledger.create_transfer(_hold(pending_id, 10_000, timeout))
    eur = Money(amount=4_000, currency="EUR")
    ledger.create_transfer(Transfer(transfer_id="clear-3", kind=TransferKind.POST_PENDING,
                                    pending_id="auth-3", amount=eur))  # fmt: skip
    # A void of 0 releases all that remains (a void of less releases that part).
    ledger.create_transfer(Transfer(transfer_id="void-4", kind=TransferKind.VOID_PENDING,
                                    pending_id="auth-4",
                                    amount=Money(amount=0, currency="EUR")))  # fmt: skip
    ledger.create_transfer(Transfer(transfer_id="clear-5", kind=TransferKind.POST_PENDING,
                                    pending_id="auth-5", amount=eur, close=True))  # fmt: skip
    return [
        _record(
            tx,
            _event(
                "AuthorizationHeld",
                tx,
                "payments.posting",
                pendingId=tx,
                postingStatus="POSTED",
                amount={"amount": 10_000, "currency": "EUR"},
            ),
            label="authorization",
        )
        for tx in holds
    ]


def test_holds_nothing_cleared_expire_when_the_run_lets_time_pass(start: Any) -> None:
    runtime = start(review_target=None, ledger=True)
    records = _held_in_ledger(runtime)
    began = datetime.now(UTC)

    result = run_transactions(runtime, records)

    assert result.holds_expired_as_of is not None
    assert result.holds_expired_as_of > began + timedelta(seconds=LONG_HOLD_SECONDS)
    expired = [e for e in runtime.event_log.events if e.detail_type == "HoldExpired"]
    assert sorted(e.transaction_id or "" for e in expired) == ["auth-1", "auth-2", "auth-3"]
    report = build_report(runtime, result, {})
    assert report.data["lifecycle"]["expiries"] == {
        "count": 3, "released": {"EUR": 10_000 + 10_000 + 6_000}}  # fmt: skip
    assert report.data["lifecycle"]["holds"]["placed"] == 5
    ledger = report.data["ledger"]
    assert ledger["pendings"] == {"total": 5, "OPEN": 0, "POSTED": 1, "VOIDED": 1, "EXPIRED": 3}
    assert ledger["openRemaining"] == {}
    assert ledger["problems"] == []
    assert ledger["trialBalances"]["EUR"]["balanced"] is True
    assert ledger["accountsChecked"] >= 2  # the card's account and the clearing account
    assert "authorization -> authorization held, hold expired" in report.to_text()
    assert "Ledger check           ok" in report.to_text()
    assert run_failures(report) == []


def test_an_expiry_nobody_announced_fails_the_run(start: Any) -> None:
    runtime = start(review_target=None, ledger=True, announce_expiries=False)
    records = _held_in_ledger(runtime)

    result = run_transactions(runtime, records)

    report = build_report(runtime, result, {})
    [problem] = report.data["ledger"]["problems"]
    assert problem.startswith("3 expired pendings with no HoldExpired event")
    assert report.data["ledger"]["expiredWithoutEvent"] == ["auth-1", "auth-2", "auth-3"]
    assert any("the ledger check failed" in p for p in run_failures(report))
    assert "Ledger check           FAILED" in report.to_text()


def test_an_account_whose_pending_balance_is_not_its_holds_fails_the_check(start: Any) -> None:
    runtime = start(review_target=None, ledger=True)
    records = _held_in_ledger(runtime)
    result = run_transactions(runtime, records, expire_holds=False)
    # Holds still open (time was not let pass); the account's balance item is then changed
    # behind the ledger's back.
    runtime.clients.dynamodb.update_item(
        TableName=runtime.output(BALANCES_TABLE_OUTPUT),
        Key={"pk": {"S": "ACCOUNT#CARD-1"}, "sk": {"S": "ACCOUNT"}},
        UpdateExpression="ADD pendingDebits :more",
        ExpressionAttributeValues={":more": {"N": "1"}},
    )

    report = build_report(runtime, result, {})

    ledger = report.data["ledger"]
    assert ledger["pendings"]["OPEN"] == 3
    assert ledger["openRemaining"] == {"EUR": 10_000 + 10_000 + 6_000}
    assert ledger["accountMismatches"] == [
        {"accountId": "CARD-1", "currency": "EUR", "pendingDebits": 26_001,
         "openHoldsDebiting": 26_000, "pendingCredits": 0, "openHoldsCrediting": 0}
    ]  # fmt: skip
    problems = ledger["problems"]
    assert problems[0].startswith("1 accounts whose pending balance is not their open holds'")
    # The pending debits no longer equal the pending credits either.
    assert problems[-1] == "1 currencies whose trial balance is not zero, e.g. EUR"
    assert run_failures(report)


# -- feeding at the rate the pipeline drains --------------------------------------------


def _watch_in_flight(runtime: LocalRuntime) -> list[tuple[int, int]]:
    """Before every step: (records in the transactions table, transactions with their
    outcome), as someone watching the table and the bus would see them."""
    seen: list[tuple[int, int]] = []
    step = runtime.step
    table = runtime.output("TransactionsTableName")

    def watched() -> Any:
        written = runtime.clients.dynamodb.scan(TableName=table, Select="COUNT")["Count"]
        by_tx = runtime.event_log.by_transaction
        seen.append((written, sum(1 for events in by_tx.values() if has_outcome(events))))
        return step()

    runtime.step = watched  # type: ignore[method-assign]
    return seen


def test_no_more_than_the_window_is_written_ahead_of_the_outcomes(start: Any) -> None:
    runtime = start(review_target=None)
    seen = _watch_in_flight(runtime)
    records = [_posted(f"posted-{n:04}") for n in range(10)]

    result = run_transactions(runtime, records, window=3)

    # Written three at a time, each three once the three before had their outcome.
    assert [written for written, _ in seen][:4] == [3, 6, 9, 10]
    assert all(written - finished <= 3 for written, finished in seen)
    assert result.most_in_flight == 3
    report = build_report(runtime, result, {})
    assert report.data["transactions"] == {"written": 10, "accounted": 10, "unaccounted": []}


def test_the_default_window_holds_two_batches_of_each_batching_stage(start: Any) -> None:
    runtime = start(review_target=None)
    # The miniature's one batching stage is its pipe, batches of 10.
    assert in_flight_window(runtime) == 20
    seen = _watch_in_flight(runtime)

    result = run_transactions(runtime, [_posted(f"posted-{n:04}") for n in range(50)])

    assert seen[0][0] == 20
    assert all(written - finished <= 20 for written, finished in seen)
    assert len(result.written_at) == 50


def test_transactions_that_never_finish_do_not_stop_the_rest_being_written(start: Any) -> None:
    runtime = start(review_target=None)
    # Authorized and then nothing: no terminal event ever comes for these.
    stuck = [_record(f"stuck-{n:04}") for n in range(3)]
    records = [*stuck, *(_posted(f"posted-{n:04}") for n in range(5))]

    result = run_transactions(runtime, records, window=3, settle_steps=5)

    report = build_report(runtime, result, {})
    assert report.data["transactions"]["written"] == 8
    assert report.unaccounted == ["stuck-0000", "stuck-0001", "stuck-0002"]


def test_a_window_of_less_than_one_is_refused(start: Any) -> None:
    runtime = start(review_target=None)
    with pytest.raises(ValueError, match="at least 1"):
        run_transactions(runtime, [_posted("posted-0001")], window=0)
