"""Feeding transactions into a running local pipeline and waiting until each has finished.

Records are written to the transactions table while the runtime keeps stepping (the
continuous mode), as an authorization system would keep writing, at the rate the pipeline
drains them: at most a window of transactions is written and not yet at a terminal state
(``in_flight_window``), and more are written as outcomes arrive. Writing everything up front
instead would only queue it inside the pipeline, where every step then carries all of it:
latency would grow with the run's size and throughput fall. The run ends when every
transaction written has reached a terminal state and the pipeline is idle, or, if some never
do, when it has been idle for a while: those are reported, never waited on forever.

Then what comes later in a card transaction's life, in the order it would come:

- a person's review: some transactions held for review get a ``ReviewDecided`` (approve
  some, decline some, leave some waiting), put on the bus as a case tool would, if the stack
  has a rule that takes it (``review_bus``); each is accounted again once its outcome came;
- time: the runtime's clock moves past the longest hold window, so the ledger's scheduled
  expiry sweeper releases every hold nothing cleared (``let_holds_expire``).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import boto3
from moto.events.models import EventPattern

from payment_local.event_log import LoggedEvent
from payment_local.ledger_view import ledger_of, pendings
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.account_table import AccountTable
from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.card_message import LONG_HOLD_SECONDS
from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_posting_functions.domain.events import BY_NAME, ReviewDecided, ReviewDecision
from payment_posting_functions.domain.ledger_v2.model import PendingStatus
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
# Who the demo's review decisions come from (``ReviewDecided.reviewer``).
REVIEWER = "demo-reviewer"
PUT_EVENTS_LIMIT = 10
# How many of a batching stage's batches the window holds: two keep each stage's batches
# full while the previous ones are still on their way (one would leave a stage waiting for
# the transactions ahead of it to finish before it got a whole batch).
BATCHES_IN_FLIGHT = 2


def in_flight_window(runtime: LocalRuntime) -> int:
    """How many written transactions may be in flight (written, not yet at a terminal
    state): what the pipeline's batching stages hold at once, the stream pipe's and the SQS
    event sources' batches (``BATCHES_IN_FLIGHT`` of each). Fewer would leave batches part
    empty, each a whole invocation; more would only queue inside the pipeline."""
    batches = [pipe.batch_size for pipe in runtime.topology.pipes] + [
        source.batch_size for source in runtime.topology.event_sources
    ]
    return max(1, BATCHES_IN_FLIGHT * sum(batches))


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


def has_outcome(events: Sequence[LoggedEvent]) -> bool:
    """Has the transaction reached a terminal state? One held for review whose decision was
    sent has when the decision's outcome came: a terminal event after its ``ReviewDecided``
    (the ``TransactionHeld`` before it ended its lifecycle only until the decision)."""
    decided = max(
        (n for n, e in enumerate(events) if e.detail_type == EventName.REVIEW_DECIDED), default=-1
    )
    return any(is_terminal(event) for event in events[decided + 1 :])


def held_for_review(events: Sequence[LoggedEvent]) -> bool:
    """Is the transaction waiting for a review decision (held, none sent yet)?"""
    last = next((e for e in reversed(events) if is_terminal(e)), None)
    return (
        last is not None
        and last.detail_type == EventName.TRANSACTION_HELD
        and not any(e.detail_type == EventName.REVIEW_DECIDED for e in events)
    )


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
    """What was written, when, and how long the pipeline took to finish it; then what the
    later phases did.

    ``ids`` runs parallel to ``records``: the id each record is tracked by, which is its
    transaction id unless that holds a card number (see ``UNNAMED_PREFIX``).
    ``finished_at`` is when the written records had finished (or the pipeline went idle),
    before the review decisions and the expiry of holds: what throughput is measured over.
    """

    records: list[InputRecord]
    ids: list[str] = field(default_factory=list)
    written_at: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    steps: int = 0
    # The most transactions ever written and not yet at a terminal state at once (those given
    # up on as stalled not counted): what the feeding kept the pipeline's load to.
    most_in_flight: int = 0
    # This process's CPU time (every thread) over the same span as ``elapsed``: what the run
    # cost, which unlike the wall clock does not depend on what else the machine runs.
    cpu_seconds: float = 0.0
    # Whether the stack has a rule that takes review decisions (None: not looked for), and
    # the decisions sent, by transaction id.
    reviews_taken: bool | None = None
    review_decisions: dict[str, ReviewDecision] = field(default_factory=dict)
    # The runtime time the run let pass for holds to expire (None: it did not: no built-in
    # ledger, no schedule, or not asked to).
    holds_expired_as_of: datetime | None = None

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


@dataclass
class _Follow:
    """Steps the runtime and keeps, from the events it logs, which written transactions
    have reached their outcome (``has_outcome``)."""

    runtime: LocalRuntime
    result: RunResult
    on_progress: Callable[[int], None] | None = None
    accounted: set[str] = field(default_factory=set)
    _cursor: int = 0  # events of the log already looked at
    _reported: int = 0  # the most ever accounted at once: progress only goes forward

    # Written transactions given up on for the window: in flight when the pipeline went
    # idle, so they will not reach an outcome on their own (filtered out, dead-lettered).
    stalled: set[str] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return len(self.accounted) == len(self.result.written_at)

    @property
    def in_flight(self) -> int:
        """Written transactions with no outcome yet, those given up on not counted."""
        written = self.result.written_at
        given_up = sum(1 for tx in self.stalled if tx in written and tx not in self.accounted)
        return len(written) - len(self.accounted) - given_up

    def give_up_on_waiting(self) -> None:
        """Stop counting what is in flight now against the window (the pipeline is idle)."""
        self.stalled.update(set(self.result.written_at) - self.accounted)

    def step(self) -> int:
        """One step of the runtime; how much moved."""
        moved = self.runtime.step().total
        self.result.steps += 1
        log = self.runtime.event_log
        new = log.events[self._cursor :]
        self._cursor = len(log.events)
        for event in new:
            self.result.claim(event)
        for tx in {e.transaction_id for e in new}:
            if tx is None or tx not in self.result.written_at:
                continue
            if has_outcome(log.by_transaction[tx]):
                self.accounted.add(tx)
            else:
                self.accounted.discard(tx)  # a decision was sent: its outcome is still to come
        if self.on_progress is not None and len(self.accounted) > self._reported:
            self.on_progress(len(self.accounted) - self._reported)
            self._reported = len(self.accounted)
        return moved

    def settle(self, deadline: float, settle_steps: int) -> None:
        """Step until nothing moves and every transaction has its outcome, or until nothing
        has moved for ``settle_steps`` (what is missing is reported, not waited on)."""
        idle_steps = 0
        while self.runtime.clock() < deadline:
            idle_steps = 0 if self.step() else idle_steps + 1
            if (idle_steps and self.done) or idle_steps >= settle_steps:
                return


def run_transactions(
    runtime: LocalRuntime,
    records: Sequence[InputRecord],
    *,
    window: int | None = None,
    settle_steps: int = 50,
    timeout: float = 3600.0,
    on_progress: Callable[[int], None] | None = None,
    decide_reviews: bool = True,
    expire_holds: bool = True,
) -> RunResult:
    """Write ``records`` while stepping the runtime, keeping at most ``window`` of them in
    flight (default: ``in_flight_window``); return when each transaction has reached a
    terminal state (or the pipeline went idle without that: see the report). Then, with
    ``decide_reviews``, send review decisions for some of the transactions held for review
    and wait for their outcome; with ``expire_holds``, let the holds nothing cleared expire
    (see the module's docstring).

    A step that moves nothing while records wait to be written means what is in flight will
    not finish on its own (filtered out by the pipe, or dead-lettered): it stops counting
    against the window, so the rest is written, and it is reported if it never finishes.

    ``on_progress`` gets the number of transactions newly finished after each step.
    """
    if window is not None and window < 1:
        raise ValueError(f"the in-flight window must be at least 1, not {window}")
    table = TransactionTable(
        boto3.resource("dynamodb").Table(runtime.output(TRANSACTIONS_TABLE_OUTPUT)),
        _retention(runtime),
    )
    _seed_sample_accounts(runtime)
    limit = window if window is not None else in_flight_window(runtime)
    result = RunResult(records=list(records))
    follow = _Follow(runtime, result, on_progress)
    pending = deque(zip(result.ids, records, strict=True))
    idle_steps = 0
    clock = runtime.clock
    result.started_at = clock()
    cpu_started = time.process_time()
    deadline = result.started_at + timeout
    while clock() < deadline:
        room = limit - follow.in_flight
        if pending and room > 0:
            chunk = [pending.popleft() for _ in range(min(room, len(pending)))]
            now = clock()
            table.put_all(record.item for _, record in chunk)
            for tracked, _ in chunk:
                result.written_at[tracked] = now
            result.most_in_flight = max(result.most_in_flight, follow.in_flight)
        moved = follow.step()
        if not moved and pending:
            follow.give_up_on_waiting()  # idle with a full window: nothing in it will finish
        idle_steps = 0 if moved or pending else idle_steps + 1
        if not pending and idle_steps and follow.done:
            break
        if idle_steps >= settle_steps:
            break  # idle and still missing some: report them rather than wait forever
    result.finished_at = clock()
    result.cpu_seconds = time.process_time() - cpu_started
    if decide_reviews:
        bus = review_bus(runtime)
        result.reviews_taken = bus is not None
        if bus is not None:
            by_tx = runtime.event_log.by_transaction
            held = [tx for tx in result.ids if held_for_review(by_tx.get(tx, []))]
            result.review_decisions = send_review_decisions(runtime, bus, review_plan(held))
            follow.accounted.difference_update(result.review_decisions)
            follow.settle(deadline, settle_steps)
    if expire_holds:
        result.holds_expired_as_of = let_holds_expire(runtime, follow, deadline, settle_steps)
    return result


# -- review decisions -----------------------------------------------------------------


def _decision_event(runtime: LocalRuntime, decision: ReviewDecision) -> dict[str, Any]:
    """A ``ReviewDecided`` as EventBridge would match it against a rule."""
    return {
        "version": "0",
        "id": "sample",
        "detail-type": EventName.REVIEW_DECIDED.value,
        "source": EventSource.REVIEW.value,
        "account": runtime.environment.account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": runtime.environment.region,
        "resources": [],
        "detail": ReviewDecided(
            transaction_id="sample-transaction", decision=decision, reviewer=REVIEWER
        ).to_detail(),
    }


def review_bus(runtime: LocalRuntime) -> str | None:
    """The bus to send review decisions to: the one whose enabled rules, with targets, take
    a ``ReviewDecided`` of every decision. None when the stack has no such rule (a stack
    before its rules engine takes decisions): a decision sent there would never be answered,
    so none is sent."""
    buses: dict[ReviewDecision, set[str]] = {decision: set() for decision in ReviewDecision}
    for _, resource in sorted(runtime.assembly.resources.items()):
        props = resource.get("Properties", {})
        if (
            resource.get("Type") != "AWS::Events::Rule"
            or props.get("State", "ENABLED") != "ENABLED"
            or not props.get("Targets")
            or "EventPattern" not in props
        ):
            continue
        pattern = EventPattern.load(json.dumps(runtime.resolver.resolve(props["EventPattern"])))
        bus = str(runtime.resolver.resolve(props.get("EventBusName", "default")))
        for decision, found in buses.items():
            if pattern.matches_event(cast(Any, _decision_event(runtime, decision))):
                found.add(bus)
    common = set.intersection(*buses.values())
    return min(common) if common else None


def review_plan(held: Sequence[str]) -> list[tuple[str, ReviewDecision]]:
    """What the demo's reviewer decides, in the order the transactions were written: the
    first of every three approved, the second declined, the third left waiting (nobody has
    got to it yet), so a run shows each."""
    cycle = (ReviewDecision.APPROVE, ReviewDecision.DECLINE, None)
    return [(tx, decision) for n, tx in enumerate(held) if (decision := cycle[n % 3]) is not None]


def send_review_decisions(
    runtime: LocalRuntime, bus: str, plan: Sequence[tuple[str, ReviewDecision]]
) -> dict[str, ReviewDecision]:
    """Put a ``ReviewDecided`` on ``bus`` for each of ``plan``, as the operators' case tool
    would; return those the bus accepted, by transaction id."""
    sent: dict[str, ReviewDecision] = {}
    for start in range(0, len(plan), PUT_EVENTS_LIMIT):
        batch = plan[start : start + PUT_EVENTS_LIMIT]
        entries = [
            {
                "EventBusName": bus,
                "Source": EventSource.REVIEW.value,
                "DetailType": EventName.REVIEW_DECIDED.value,
                "Detail": json.dumps(
                    ReviewDecided(
                        transaction_id=tx, decision=decision, reviewer=REVIEWER
                    ).to_detail()
                ),
            }
            for tx, decision in batch
        ]
        response = runtime.clients.events.put_events(Entries=entries)
        for (tx, decision), outcome in zip(batch, response["Entries"], strict=True):
            if outcome.get("EventId"):
                sent[tx] = decision
    return sent


# -- holds expiring -------------------------------------------------------------------


def let_holds_expire(
    runtime: LocalRuntime, follow: _Follow, deadline: float, settle_steps: int
) -> datetime | None:
    """Move the runtime's clock past the longest hold window (and past every open hold's
    expiry), so the ledger's scheduled expiry sweeper releases what nothing cleared; again a
    tick later while a sweep left some due (a sweep expires a batch at most). Returns the
    time it ran as of, on the runtime's clock; None without a built-in ledger or a schedule,
    when no time is let pass (a core system over HTTP keeps its own holds)."""
    ledger = ledger_of(runtime)
    schedules = runtime.topology.schedules
    if ledger is None or not schedules:
        return None
    now = runtime.now()
    expiries = [
        p.expires_at.timestamp()
        for p in pendings(runtime, ledger)
        if p.status is PendingStatus.OPEN and p.expires_at is not None
    ]
    period = max(rule.period_s for rule in schedules)
    runtime.advance_time(max([now + LONG_HOLD_SECONDS, *expiries]) + period - now)
    left: int | None = None
    while True:
        follow.settle(deadline, settle_steps)
        as_of = runtime.now()
        due = [
            p
            for p in pendings(runtime, ledger)
            if p.status is PendingStatus.OPEN
            and p.expires_at is not None
            and p.expires_at.timestamp() <= as_of
        ]
        if not due or (left is not None and len(due) >= left) or runtime.clock() >= deadline:
            # Done, or a sweep released nothing more: what is left is reported as overdue.
            return datetime.fromtimestamp(as_of, UTC)
        left = len(due)
        runtime.advance_time(period)
