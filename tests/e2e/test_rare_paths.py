"""The paths a demo rarely takes, run end to end with the access check on: the sample source
function, a workflow that cannot be started, an enrichment that keeps failing.

Each also feeds ``test_permissions_used.py`` the calls these paths make (a dead-letter queue
written by EventBridge, a failure destination written by a function's role), which a green
demo never shows.
"""

from __future__ import annotations

import json

import boto3
import pytest

from payment_local.ledger_view import ledger_of
from payment_local.pipeline_run import run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.events import BY_NAME
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator
from payment_posting_functions.domain.ledger_v2.sample_accounts import open_sample_accounts
from payment_posting_functions.domain.transaction_table import TransactionTable

pytestmark = pytest.mark.slow

CLEAN = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0, high_value_rate=0)


def _queue(runtime: LocalRuntime, prefix: str) -> str:
    [url] = [url for lid, url in runtime.topology.queues.items() if lid.startswith(prefix)]
    return url


def _drain_transaction_ids(runtime: LocalRuntime, url: str) -> list[str]:
    found = []
    while messages := runtime.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            body = json.loads(message["Body"])
            # A function's on-failure destination gets an invocation record; a rule target's
            # dead-letter queue, the event.
            found.append(body.get("requestPayload", body)["detail"]["transactionId"])
            runtime.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_sample_source_function_starts_lifecycles_that_all_finish(
    runtime: LocalRuntime,
) -> None:
    [source] = [f for lid, f in runtime.topology.functions.items() if "SampleSource" in lid]

    result = source.invoke({"count": 15, "seed": 3, "duplicateRate": 0.2})
    # Invoked again, as a user would: the accounts it opened are open already (unchanged).
    again = source.invoke({"count": 5, "seed": 4, "duplicateRate": 0})
    runtime.run_until_idle()

    assert result["written"] == 15
    assert again["written"] == 5
    by_tx = runtime.event_log.by_transaction
    authorized = {
        tx for tx, events in by_tx.items() if events[0].detail_type == "TransactionAuthorized"
    }
    assert len(authorized) == 20
    for tx in authorized:
        terminal = [e for e in by_tx[tx] if BY_NAME[e.detail_type].TERMINAL]
        assert len(terminal) == 1, [e.detail_type for e in by_tx[tx]]
    assert runtime.access.denials() == []

    # Nothing but the function opened the ledger's accounts (this runtime seeded nothing):
    # each posting landed on the account enrichment named, with its own role's grants, and
    # the house accounts opened on first use.
    ledger = ledger_of(runtime)
    assert ledger is not None
    directory = {a.account_id for a in sample_accounts()}
    named = {
        e.transaction_id: e.detail["enrichment"]["postingAccountId"]
        for e in runtime.event_log.events
        if e.detail_type == "TransactionEnriched"
    }
    posted = [e.detail for e in runtime.event_log.events if e.detail_type == "TransactionPosted"]
    assert posted
    landed = 0
    for detail in posted:
        booked = ledger.lookup_transfer(detail["postingId"])
        assert booked is not None
        assert detail["accountId"] in {booked.debit_account_id, booked.credit_account_id}
        if named[detail["transactionId"]] in directory:
            assert detail["accountId"] == named[detail["transactionId"]]
            landed += 1
    assert landed
    failed = [e.detail for e in runtime.event_log.events if e.detail_type == "PostingFailed"]
    assert failed == []
    for currency in {d["amount"]["currency"] for d in posted}:
        assert ledger.account(f"CLEARING-{currency}") is not None
        assert ledger.trial_balance(currency).posted == 0


def test_a_workflow_that_cannot_start_leaves_its_events_in_the_rules_dead_letter_queue(
    runtime: LocalRuntime,
) -> None:
    runtime.clients.stepfunctions.delete_state_machine(
        stateMachineArn=runtime.output("RulesStateMachineArn")
    )
    records = list(TransactionGenerator(knobs=CLEAN, seed=17).generate(12))

    run_transactions(runtime, records, settle_steps=5)

    # EventBridge retried, then wrote each enriched event to the target's dead-letter queue
    # with its own service principal (queue policy and key policy allowing it).
    waiting = _drain_transaction_ids(runtime, _queue(runtime, "RulesEngineDeadLetter"))
    assert sorted(waiting) == sorted(r.transaction_id for r in records)
    assert runtime.access.denials() == []


def test_an_enrichment_that_keeps_failing_ends_in_its_failure_destination(
    runtime: LocalRuntime,
) -> None:
    runtime.clients.dynamodb.delete_table(TableName=runtime.output("AccountsTableName"))
    records = list(TransactionGenerator(knobs=CLEAN, seed=19).generate(10))

    transactions = boto3.resource("dynamodb").Table(runtime.output("TransactionsTableName"))
    TransactionTable(transactions).put_all(r.item for r in records)
    runtime.run_until_idle()

    # Lambda retried twice, then sent each event, as the function's role, to its destination.
    waiting = _drain_transaction_ids(runtime, _queue(runtime, "EnrichmentDeadLetter"))
    assert sorted(waiting) == sorted(r.transaction_id for r in records)
    assert runtime.access.denials() == []


def test_a_duplicate_processor_that_cannot_notify_ends_in_its_failure_destination(
    runtime: LocalRuntime,
) -> None:
    runtime.clients.sns.delete_topic(TopicArn=runtime.output("NotificationTopicArn"))
    knobs = Knobs(duplicate_rate=0.5, malformed_rate=0, rule_break_rate=0, high_value_rate=0)
    records = list(TransactionGenerator(knobs=knobs, seed=29).generate(12))
    duplicates = {r.transaction_id for r in records if r.duplicate_of}
    assert duplicates

    run_transactions(runtime, records, settle_steps=5)

    # The notification fails; Lambda retries, then the function's role writes the event to
    # the processor's failure destination.
    waiting = _drain_transaction_ids(runtime, _queue(runtime, "ScreeningOutcomesDeadLetter"))
    assert set(waiting) == duplicates
    assert runtime.access.denials() == []


def test_a_frozen_account_refuses_its_debits_and_each_ends_posting_failed(
    runtime: LocalRuntime,
) -> None:
    ledger = ledger_of(runtime)
    assert ledger is not None
    open_sample_accounts(ledger)
    frozen = sample_accounts()[0]
    ledger.freeze(frozen.account_id)
    knobs = Knobs(
        duplicate_rate=0,
        malformed_rate=0,
        rule_break_rate=0,
        high_value_rate=0,
        unknown_account_rate=0,
        foreign_rate=0,
    )
    records = list(
        TransactionGenerator(knobs=knobs, seed=23, account_ids=(frozen.account_id,)).generate(8)
    )

    run_transactions(runtime, records, settle_steps=5)

    by_tx = runtime.event_log.by_transaction
    failed = []
    for record in records:
        terminal = [e for e in by_tx[record.transaction_id] if BY_NAME[e.detail_type].TERMINAL]
        assert len(terminal) == 1, [e.detail_type for e in by_tx[record.transaction_id]]
        if terminal[0].detail_type == "PostingFailed":
            failed.append(terminal[0].detail)
    # Every debit of the frozen account is refused with its reason; nothing moved on it.
    assert failed
    assert {d["reasonCode"] for d in failed} == {"ACCOUNT_FROZEN"}
    assert {d["accountId"] for d in failed} == {frozen.account_id}
    booked = sum(
        e.detail["amount"]["amount"] * (1 if e.detail["direction"] == "CREDIT" else -1)
        for e in runtime.event_log.events
        if e.detail_type == "TransactionPosted" and e.detail["accountId"] == frozen.account_id
    )
    assert ledger.balance(frozen.account_id).posted == booked >= 0
    assert ledger.trial_balance(frozen.currency).posted == 0
    assert runtime.access.denials() == []
