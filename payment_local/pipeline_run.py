"""Feeding transactions into a running local pipeline and waiting until each has finished.

Records are written to the transactions table a chunk at a time while the runtime keeps
stepping (the continuous mode), as an authorization system would keep writing. The run ends
when every transaction written has reached a terminal state and the pipeline is idle, or, if
some never do, when it has been idle for a while: those are reported, never waited on forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import boto3

from payment_local.event_log import LoggedEvent
from payment_local.ledger_view import ledger_of
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.account_table import AccountTable
from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.events import BY_NAME
from payment_posting_functions.domain.ledger_v2.sample_accounts import open_sample_accounts
from payment_posting_functions.domain.pan import contains_card_number
from payment_posting_functions.domain.screening import REDACTED_KEY_PREFIX
from payment_posting_functions.domain.transaction_table import TransactionTable

TRANSACTIONS_TABLE_OUTPUT = "TransactionsTableName"
RETENTION_OUTPUT = "TransactionRetentionSeconds"
# What a record whose transaction id holds a card number is tracked as until the pipeline names
# it: screening replaces such a key with redacted-key-<stream sequence number>, and the raw id
# must never be printed or stored, here included.
UNNAMED_PREFIX = "card-number-key-"
ACCOUNTS_TABLE_OUTPUT = "AccountsTableName"


def _seed_sample_accounts(runtime: LocalRuntime) -> None:
    """The sample account directory, and its accounts opened in the built-in ledger (v2
    posts only to accounts that exist), as the sample source function does in a dev stage."""
    ledger = ledger_of(runtime)
    if ledger is not None:
        open_sample_accounts(ledger)
    try:
        table_name = runtime.output(ACCOUNTS_TABLE_OUTPUT)
    except KeyError:
        return  # a stack without enrichment
    AccountTable(boto3.resource("dynamodb").Table(table_name)).put_all(sample_accounts())


def _retention(runtime: LocalRuntime) -> timedelta | None:
    """What the stack tells writers to set each record's expiry to (None: no expiry)."""
    try:
        return timedelta(seconds=int(runtime.output(RETENTION_OUTPUT)))
    except KeyError:
        return None


def is_terminal(event: LoggedEvent) -> bool:
    """Does this event end its transaction's lifecycle (per the event catalogue)?"""
    model = BY_NAME.get(event.detail_type)
    return model is not None and model.TERMINAL


class InputRecord(Protocol):
    """A table item to write, and what it was made to be, when that is known."""

    @property
    def item(self) -> dict[str, Any]: ...

    @property
    def transaction_id(self) -> str: ...

    @property
    def kind_label(self) -> str | None: ...

    @property
    def duplicate_of(self) -> str | None: ...

    @property
    def planted(self) -> str | None:
        """The defect or rule break the generator planted, if any."""

    @property
    def lifecycle_label(self) -> str | None:
        """Which message of a card transaction's life it was made to be, and for the first
        one what was planned (``authorization (cleared in parts)``), when that is known."""

    @property
    def follows(self) -> str | None:
        """For a later message of a card transaction (a clearing, a reversal, a refund), the
        transaction id of the message that started it, when that is known."""


@dataclass(frozen=True)
class LabelledRecord:
    """An item from a file; the label comes from ``payments-local generate --with-kind``."""

    item: dict[str, Any]
    kind_label: str | None = None
    duplicate_of: str | None = None
    planted: str | None = None
    lifecycle_label: str | None = None
    follows: str | None = None

    @property
    def transaction_id(self) -> str:
        return str(self.item["transactionId"])


@dataclass
class RunResult:
    """What was written, when, and how long the whole run took.

    ``ids`` runs parallel to ``records``: the id each record is tracked by, which is its
    transaction id unless that holds a card number (see ``UNNAMED_PREFIX``).
    """

    records: list[InputRecord]
    ids: list[str] = field(default_factory=list)
    written_at: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    steps: int = 0

    def __post_init__(self) -> None:
        unnamed = 0
        for record in self.records:
            if contains_card_number(record.transaction_id):
                unnamed += 1
                self.ids.append(f"{UNNAMED_PREFIX}{unnamed}")
            else:
                self.ids.append(record.transaction_id)

    @property
    def elapsed(self) -> float:
        return self.finished_at - self.started_at

    def claim(self, event: LoggedEvent) -> None:
        """Give the first unnamed record still waiting the redacted id the pipeline chose.

        Records with card numbers in their keys cannot be told apart after redaction (that is
        the point), so they are matched in order; each still gets exactly one lifecycle.
        """
        name = event.transaction_id
        if not name or not name.startswith(REDACTED_KEY_PREFIX) or name in self.written_at:
            return
        waiting = next((i for i, tx in enumerate(self.ids) if tx.startswith(UNNAMED_PREFIX)), None)
        if waiting is None or self.ids[waiting] not in self.written_at:
            return
        self.written_at[name] = self.written_at.pop(self.ids[waiting])
        self.ids[waiting] = name


def run_transactions(
    runtime: LocalRuntime,
    records: Sequence[InputRecord],
    *,
    chunk_size: int = 25,
    settle_steps: int = 50,
    timeout: float = 3600.0,
    on_progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Write ``records`` in chunks while stepping the runtime; return when each transaction
    has reached a terminal state (or the pipeline went idle without that: see the report).

    ``on_progress`` gets the number of transactions newly finished after each step.
    """
    table = TransactionTable(
        boto3.resource("dynamodb").Table(runtime.output(TRANSACTIONS_TABLE_OUTPUT)),
        _retention(runtime),
    )
    _seed_sample_accounts(runtime)
    result = RunResult(records=list(records))
    pending = list(zip(result.ids, records, strict=True))
    accounted: set[str] = set()
    cursor = 0  # events of the log already looked at
    idle_steps = 0
    clock = runtime.clock
    result.started_at = clock()
    deadline = result.started_at + timeout
    while clock() < deadline:
        if pending:
            chunk, pending = pending[:chunk_size], pending[chunk_size:]
            now = clock()
            table.put_all(record.item for _, record in chunk)
            for tracked, _ in chunk:
                result.written_at[tracked] = now
        moved = runtime.step().total
        result.steps += 1
        before = len(accounted)
        events = runtime.event_log.events
        for event in events[cursor:]:
            result.claim(event)
        accounted.update(
            event.transaction_id
            for event in events[cursor:]
            if event.transaction_id in result.written_at and is_terminal(event)
        )
        cursor = len(events)
        if on_progress is not None and len(accounted) > before:
            on_progress(len(accounted) - before)
        idle_steps = 0 if moved or pending else idle_steps + 1
        if not pending and idle_steps and len(accounted) == len(result.written_at):
            break
        if idle_steps >= settle_steps:
            break  # idle and still missing some: report them rather than wait forever
    result.finished_at = clock()
    return result
