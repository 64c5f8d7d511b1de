"""The ledger's expiry sweeper, on its schedule, as its own role, on a clock the test moves.

Pending transfers (authorization holds) are made here directly in the ledger, as the card
lifecycle will make them; the sweeper function of the stack releases them when the runtime's
time passes their timeout, and not before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from payment_local.ledger_view import ledger_of
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_posting_functions.domain.ledger_v2 import dynamodb as dynamodb_ledger
from payment_posting_functions.domain.ledger_v2.house import clearing_account
from payment_posting_functions.domain.ledger_v2.model import (
    PendingState,
    PendingStatus,
    Transfer,
    TransferKind,
)
from payment_posting_functions.domain.money import Money

pytestmark = pytest.mark.slow

ALICE = "acc-hold-alice"


def _hold(transfer_id: str, amount: int, timeout_s: int) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        kind=TransferKind.PENDING,
        debit_account_id=ALICE,
        credit_account_id=clearing_account("EUR"),
        amount=Money(amount=amount, currency="EUR"),
        timeout_s=timeout_s,
    )


def _sweeps(runtime: LocalRuntime) -> int:
    return sum(rule.fired for rule in runtime.topology.schedules)


def test_holds_are_released_by_the_scheduled_sweeper_once_their_timeout_passes(
    runtime: LocalRuntime,
) -> None:
    ledger = ledger_of(runtime)
    assert ledger is not None
    ledger.open_account(ALICE, "EUR", credit_limit=1_000)
    ledger.create_transfer(_hold("hold-short", 300, timeout_s=90))
    ledger.create_transfer(_hold("hold-long", 200, timeout_s=3_600))
    assert ledger.balance(ALICE).pending_debits == 500

    runtime.run_until_idle()
    assert _sweeps(runtime) == 0  # a minute has not passed yet

    runtime.advance_time(61)
    runtime.run_until_idle()
    assert _sweeps(runtime) == 1  # the first tick: nothing is due yet
    assert ledger.balance(ALICE).pending_debits == 500

    runtime.advance_time(60)
    runtime.run_until_idle()
    assert _sweeps(runtime) == 2
    short = ledger.pending("hold-short")
    assert short is not None
    assert short.status is PendingStatus.EXPIRED
    assert ledger.lookup_transfer("expire:hold-short") is not None
    assert ledger.balance(ALICE).pending_debits == 200
    assert ledger.balance(ALICE).available == -200
    # Announced on the bus, by the sweeper's role, under the authorization's id.
    [expired] = [
        e for e in runtime.event_log.events if e.detail_type == EventName.HOLD_EXPIRED.value
    ]
    assert expired.source == EventSource.POSTING.value
    assert (expired.transaction_id, expired.detail["accountId"], expired.detail["released"]) == (
        "hold-short", ALICE, {"amount": 300, "currency": "EUR"},
    )  # fmt: skip

    runtime.advance_time(86_400)
    runtime.run_until_idle()
    assert _sweeps(runtime) == 3  # a day passed in one advance: one tick, at the new time
    long = ledger.pending("hold-long")
    assert long is not None
    assert long.status is PendingStatus.EXPIRED
    balance = ledger.balance(ALICE)
    assert (balance.posted, balance.pending_debits, balance.available) == (0, 0, 0)
    assert ledger.trial_balance("EUR").posted == 0
    assert ledger.trial_balance("EUR").pending_debits == ledger.trial_balance("EUR").pending_credits

    # The sweeps ran as the sweeper's role, with nothing refused.
    assert runtime.access.denials() == []


def test_a_hold_posted_while_a_sweep_runs_is_not_also_released(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep reads the due holds, then the clearing posts one before the sweep writes:
    the sweep's write is refused (the hold changed since it was read), it reads what
    happened, and leaves that hold alone."""
    ledger = ledger_of(runtime)
    assert ledger is not None
    ledger.open_account(ALICE, "EUR", credit_limit=1_000)
    ledger.create_transfer(_hold("hold-raced", 300, timeout_s=30))
    read_due = dynamodb_ledger._pending
    raced: list[str] = []

    def posted_meanwhile(item: dict[str, Any]) -> PendingState:
        state = read_due(item)
        if state.pending_id == "hold-raced" and not raced:
            raced.append(state.pending_id)
            ledger.create_transfer(
                Transfer(
                    transfer_id="clear-1",
                    kind=TransferKind.POST_PENDING,
                    pending_id="hold-raced",
                    amount=Money(amount=300, currency="EUR"),
                )
            )
        return state

    monkeypatch.setattr(dynamodb_ledger, "_pending", posted_meanwhile)
    runtime.advance_time(61)
    runtime.run_until_idle()

    assert _sweeps(runtime) == 1
    state = ledger.pending("hold-raced")
    assert state is not None
    assert state.status is PendingStatus.POSTED
    assert ledger.lookup_transfer("expire:hold-raced") is None
    balance = ledger.balance(ALICE)
    assert (balance.posted, balance.pending_debits) == (-300, 0)
    assert runtime.access.denials() == []


def test_a_sweep_that_fails_lands_in_the_sweepers_dead_letter_queue(
    runtime: LocalRuntime,
) -> None:
    runtime.clients.dynamodb.delete_table(TableName=runtime.output("LedgerBalancesTableName"))
    [url] = [
        url for lid, url in runtime.topology.queues.items() if "ExpirySweeperDeadLetter" in lid
    ]

    runtime.advance_time(61)
    runtime.run_until_idle()

    # No retry (the next tick is the retry): the failed sweep's record, written by the
    # function's role to its on-failure destination.
    messages = runtime.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    [message] = messages["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["detail-type"] == "Scheduled Event"
    assert record["responsePayload"]["errorType"] == "ResourceNotFoundException"
    assert runtime.access.denials() == []
