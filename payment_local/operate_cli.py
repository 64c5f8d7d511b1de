"""``payments-local status | redrive | replay | decide | audit | check``: operating the stack.

Each works on the local state a run left (``--state``, default ``default``) or, with
``--stack NAME``, on a deployed stack with the caller's AWS credentials, resolving every
name from the stack's resources and outputs. Redrives and replays leave an audit record:
locally in the state's ``audit.jsonl``; on both, an ``OperationRecorded`` event on the
payments bus, which the archive keeps with everything else.
"""

from __future__ import annotations

import getpass
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from payment_local.cli import (
    _assembly,
    _cdk_out_option,
    _ledger_dump,
    _started,
    _state,
    _state_flag,
    main,
    state_option,
)
from payment_local.operations.accounting import Accounting, account
from payment_local.operations.dead_letters import DeadLetterQueue, dead_letter_queues
from payment_local.operations.planes import AwsPlane, LocalPlane, OperationError, Plane
from payment_local.operations.redrive import RedriveResult, redrive
from payment_local.operations.replay import (
    ReplayResult,
    archive_of,
    choose_rules,
    replay_aws,
    replay_local,
)
from payment_local.operations.status import status as status_of
from payment_local.pipeline_run import has_outcome
from payment_local.report import final_state
from payment_local.state import LocalState, StateError
from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_posting_functions.domain.events import ReviewDecided, ReviewDecision
from payment_posting_functions.domain.pan import redact_card_numbers

OPERATIONS_SOURCE = EventSource.OPERATIONS.value
OPERATION_RECORDED = "OperationRecorded"
EVENT_BUS_OUTPUT = "EventBusName"
AWS_AUDIT_LOG = Path(".payments-local") / "aws-audit.jsonl"

_stack_option = click.option(
    "--stack", default=None,
    help="A deployed stack's name: act on AWS with your credentials instead of the local "
    "state.",
)  # fmt: skip
_region_option = click.option("--region", default=None, help="The stack's region (with --stack).")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@dataclass
class _Session:
    plane: Plane
    state: LocalState | None = None
    runtime: Any = None
    # What the state records of this command when it is saved (local only).
    command: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None


@contextmanager
def _session(
    state_name: str, stack: str | None, region: str | None, cdk_out: Path, *, saves: bool
) -> Iterator[_Session]:
    """The plane to act on: a deployed stack, or the local state restored on moto (saved
    again afterwards when ``saves``)."""
    if stack is not None:
        try:
            yield _Session(AwsPlane(stack, region))
        except OperationError as error:
            raise click.ClickException(str(error)) from None
        except (BotoCoreError, ClientError) as error:
            # Credentials, permissions, throttling: the operator's to fix, not a traceback.
            raise click.ClickException(f"AWS refused: {error}") from None
        return
    if region is not None:
        raise click.UsageError("--region goes with --stack")
    state = _state(state_name, fresh=False)
    try:
        state.require()
    except StateError as error:
        raise click.ClickException(str(error)) from None
    assembly = _assembly(cdk_out, state)
    log_path = Path(tempfile.mkstemp(suffix=".log", prefix="payments-local-")[1])
    try:
        with state.locked(), log_path.open("w") as log, _started(assembly, log) as runtime:
            state.restore(runtime)
            session = _Session(LocalPlane(runtime, state.name), state, runtime)
            try:
                yield session
            except OperationError as error:
                raise click.ClickException(str(error)) from None
            if saves:
                log.flush()
                state.save(
                    runtime,
                    ledger=_ledger_dump(runtime),
                    command=session.command,
                    audit=session.audit,
                    function_log=log_path,
                )
    except StateError as error:
        raise click.ClickException(str(error)) from None
    finally:
        log_path.unlink(missing_ok=True)


def _record(session: _Session, action: str, details: dict[str, Any]) -> dict[str, Any]:
    """The audit record of an operation: who, when, what, how many; on the bus too."""
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "who": session.plane.who,
        "user": getpass.getuser(),
        "action": action,
        "where": session.plane.where,
        **details,
    }
    if session.state is None:
        AWS_AUDIT_LOG.parent.mkdir(parents=True, exist_ok=True)
        with AWS_AUDIT_LOG.open("a") as out:
            out.write(json.dumps(record) + "\n")
    else:
        session.audit = record
        session.command = {"command": action}
    bus = session.plane.output(EVENT_BUS_OUTPUT)
    if bus:
        try:
            session.plane.events.put_events(
                Entries=[
                    {
                        "EventBusName": bus,
                        "Source": OPERATIONS_SOURCE,
                        "DetailType": OPERATION_RECORDED,
                        "Detail": json.dumps(record),
                    }
                ]
            )
        except (BotoCoreError, ClientError) as error:
            # The operation is done: say so, and where its record is, rather than a traceback.
            kept = AWS_AUDIT_LOG if session.state is None else "the state's audit.jsonl"
            raise click.ClickException(
                f"the {action} was done, but its audit event was not put on {bus}: {error}. "
                f"The record is kept in {kept}."
            ) from None
    return record


# -- status ------------------------------------------------------------------------------


@main.command(short_help="Queue depths, dead-letter queues and alarms (local or AWS).")
@state_option
@_stack_option
@_region_option
@_cdk_out_option
@_json_option
def status(
    state_name: str, stack: str | None, region: str | None, cdk_out: Path, as_json: bool
) -> None:
    """What waits where: every queue's depth, every dead-letter queue's, and the alarms.

    Locally the dead-letter alarms are evaluated against the queues' depths (CloudWatch
    does not run locally); on AWS (--stack) they are CloudWatch's own states.
    """
    with _session(state_name, stack, region, cdk_out, saves=False) as session:
        result = status_of(session.plane)
        accounting = _accounting(session)
    if as_json:
        data = result.to_json()
        data["accounting"] = accounting.to_json() if accounting else None
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{result.where}")
    click.echo(f"  {'queue':<26} {'waiting':>8} {'in flight':>10}  kind")
    for queue in result.queues:
        kind = "dead-letter: " + ", ".join(queue.kinds) if queue.dead_letter else "work"
        mark = "  <- redrive: payments-local redrive " + queue.name if (
            queue.dead_letter and queue.visible
        ) else ""  # fmt: skip
        click.echo(f"  {queue.name:<26} {queue.visible:>8} {queue.in_flight:>10}  {kind}{mark}")
    if result.alarms:
        click.echo("Alarms")
        for alarm in result.alarms:
            click.echo(f"  {alarm['state']:<14} {alarm['name']}  {alarm['reason']}")
    if accounting is not None:
        click.echo(_accounting_text(accounting))


def _accounting(session: _Session) -> Accounting | None:
    if session.state is None:
        return None
    written = [row["id"] for row in session.state.written()]
    return account(written, session.runtime.event_log.by_transaction, _ledger_dump(session.runtime))


def _accounting_text(accounting: Accounting) -> str:
    states = ", ".join(f"{n} {state}" for state, n in accounting.final_states.most_common())
    lines = [
        f"Transactions: {accounting.written} written; final states: {states or 'none'}",
        f"  without a final state: {len(accounting.no_final_state)}"
        + (
            f" (held for review, no decision yet: {accounting.waiting_for_review})"
            if accounting.waiting_for_review
            else ""
        ),
    ]
    if accounting.trial_balance:
        lines.append(
            f"  ledger: {accounting.transfers} transfers, posted twice: "
            f"{len(accounting.posted_twice)}; trial balance "
            + ", ".join(f"{c} {t}" for c, t in accounting.trial_balance.items())
        )
    lines += [f"  PROBLEM: {problem}" for problem in accounting.problems]
    return "\n".join(lines)


# -- redrive -----------------------------------------------------------------------------


@main.command("redrive", short_help="Hand a dead-letter queue's messages back (local or AWS).")
@click.argument("queue", required=False)
@click.option("--all", "all_queues", is_flag=True, help="Every dead-letter queue with messages.")
@click.option("--dry-run", is_flag=True, help="Say what would be done, change nothing.")
@click.option("--max", "limit", type=click.IntRange(min=1), default=None,
              help="At most this many messages (one by one; no message move task).")  # fmt: skip
@state_option
@_stack_option
@_region_option
@_cdk_out_option
def redrive_command(
    queue: str | None,
    all_queues: bool,
    dry_run: bool,
    limit: int | None,
    state_name: str,
    stack: str | None,
    region: str | None,
    cdk_out: Path,
) -> None:
    """Hand what dead-letter QUEUE holds back to what failed to take it.

    QUEUE is a name `payments-local status` lists (posting, ingest, enrichment, ...). The
    posting queue's dead letters go back to the queue (an SQS message move task on AWS); a
    rule target's to that target; a failed asynchronous invocation's event to its function;
    a pipe's batch records are re-read from the table and go through the pipe again.
    Downstream is idempotent, so what was done already is not done twice.
    """
    if bool(queue) == all_queues:
        raise click.UsageError("name one dead-letter queue, or give --all")
    with _session(state_name, stack, region, cdk_out, saves=not dry_run) as session:
        queues = _chosen_queues(session.plane, queue)
        before = len(session.runtime.event_log.events) if session.runtime else 0
        results = [redrive(session.plane, q, dry_run=dry_run, limit=limit) for q in queues]
        if all_queues:
            results = [r for r in results if r.depth or queue]
        for result in results:
            click.echo(_redrive_text(result))
        if session.runtime is not None and not dry_run:
            ids = [tx for r in results for tx in r.transaction_ids]
            click.echo(_came_back(session, ids, before))
        if not dry_run:
            _record(session, "redrive", {
                "queues": [r.to_json() for r in results],
                "handedBack": sum(r.handed_back for r in results),
                "failed": sum(r.failed for r in results),
            })  # fmt: skip
            if session.runtime is not None:
                accounting = _accounting(session)
                if accounting is not None:
                    click.echo(_accounting_text(accounting))
    failed = sum(r.failed for r in results)
    if failed:
        raise click.ClickException(f"{failed} messages could not be handed back (left in place)")


def _chosen_queues(plane: Plane, name: str | None) -> list[DeadLetterQueue]:
    queues = dead_letter_queues(plane.template)
    if name is None:
        return list(queues.values())
    wanted = name.lower().removesuffix("-dead-letter-queue")
    if wanted not in queues:
        raise click.UsageError(
            f"no dead-letter queue {name!r}; there are: {', '.join(sorted(queues))}"
        )
    return [queues[wanted]]


def _redrive_text(result: RedriveResult) -> str:
    if result.dry_run:
        lines = [f"{result.queue}: {result.depth} messages; a redrive would send"]
        lines += [f"  {way}" for way in result.plan]
        return "\n".join(lines)
    if not result.depth:
        return f"{result.queue}: empty, nothing to redrive"
    ways = ", ".join(f"{n} {way}" for way, n in result.by_way.items()) or "none"
    lines = [
        f"{result.queue}: {result.depth} messages; handed back {result.handed_back} ({ways})"
        + (f"; {result.records_reread} items re-read" if result.records_reread else "")
        + (f"; {result.failed} left in place" if result.failed else "")
    ]
    if result.move_task:
        lines.append(f"  message move task {result.move_task} (SQS moves them at its own pace)")
    lines += [f"  could not: {redact_card_numbers(error)}" for error in result.errors[:5]]
    return "\n".join(lines)


def _came_back(session: _Session, ids: list[str], before: int) -> str:
    """What the handed-back transactions did after the redrive or replay, locally."""
    by_tx = session.runtime.event_log.by_transaction
    new = session.runtime.event_log.events[before:]
    touched = list(dict.fromkeys(ids))
    finished = Counter(final_state(by_tx[tx]) for tx in touched if has_outcome(by_tx.get(tx, [])))
    lines = [
        f"After it: {len(new)} events on the bus; of {len(touched)} transactions handed back, "
        f"{sum(finished.values())} have a final state"
        + (": " + ", ".join(f"{n} {s}" for s, n in finished.most_common()) if finished else "")
    ]
    if touched:
        lines.append(
            f"  follow one: payments-local events {redact_card_numbers(touched[0])}"
            f"{_state_flag(session.state) if session.state else ''}"
        )
    return "\n".join(lines)


# -- replay ------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)([smhd])$")


def _when(value: str, name: str) -> datetime:
    """An ISO time (UTC if no zone), ``now``, or a duration ago (``90s``, ``30m``, ``2h``)."""
    text = value.strip()
    now = datetime.now(UTC)
    if text == "now":
        return now
    relative = _RELATIVE.match(text)
    if relative:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[relative.group(2)]
        return now - timedelta(**{unit: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a time: give ISO 8601 (2026-12-01T09:30:00Z), 'now', or a "
            "duration ago (30m, 2h)",
            param_hint=name,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@main.command(short_help="Replay a window of the event archive to the bus (local or AWS).")
@click.option("--from", "start", required=True,
              help="Start of the window: ISO 8601, or a duration ago (30m, 2h).")  # fmt: skip
@click.option("--to", "end", default="now", show_default=True, help="End of the window.")
@click.option("--detail-type", "detail_types", multiple=True,
              help="Only the rules that take this detail-type (repeatable).")  # fmt: skip
@click.option(
    "--rule",
    "rules",
    multiple=True,
    help="Only this rule (a name as the error for an unknown one lists; repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be replayed, change nothing.")
@state_option
@_stack_option
@_region_option
@_cdk_out_option
def replay(
    start: str,
    end: str,
    detail_types: tuple[str, ...],
    rules: tuple[str, ...],
    dry_run: bool,
    state_name: str,
    stack: str | None,
    region: str | None,
    cdk_out: Path,
) -> None:
    """Send the archived events of a time window back to the bus's rules, marked as a replay.

    Safe because everything downstream is idempotent: a transaction already posted is not
    posted again, and nobody is notified twice (notifications skip replayed events).
    """
    window_start, window_end = _when(start, "--from"), _when(end, "--to")
    if window_start >= window_end:
        raise click.BadParameter("the window's start must be before its end", param_hint="--from")
    with _session(state_name, stack, region, cdk_out, saves=not dry_run) as session:
        plane = session.plane
        _, bus = archive_of(plane)
        chosen = choose_rules(plane, bus, list(rules), list(detail_types))
        before = len(session.runtime.event_log.events) if session.runtime else 0
        replayer = replay_local if session.runtime is not None else replay_aws
        result: ReplayResult = replayer(plane, window_start, window_end, chosen, dry_run=dry_run)
        click.echo(_replay_text(result))
        if session.runtime is not None and not dry_run:
            click.echo(_came_back(session, result.transaction_ids, before))
        if not dry_run:
            _record(session, "replay", result.to_json())
            accounting = _accounting(session)
            if accounting is not None:
                click.echo(_accounting_text(accounting))


def _replay_text(result: ReplayResult) -> str:
    counted = (
        f"{result.events} archived events in the window"
        + (
            " (" + ", ".join(f"{n} {t}" for t, n in result.by_type.most_common()) + ")"
            if result.by_type
            else ""
        )
        if result.events is not None
        else "the archive's events in the window"
    )
    verb = "would take" if result.dry_run else "took"
    taken = f"{result.deliveries} of them" if result.deliveries is not None else "what matches"
    return (
        f"Replay {result.name} from {result.archive}\n"
        f"  window {result.start.isoformat(timespec='seconds')} .. "
        f"{result.end.isoformat(timespec='seconds')}: {counted}\n"
        f"  rules {', '.join(result.rules)} {verb} {taken}\n"
        f"  state: {result.state}"
    )


# -- decide ------------------------------------------------------------------------------


@main.command(short_help="Send a review decision on a held transaction (local or AWS).")
@click.argument("transaction_id")
@click.argument(
    "decision", type=click.Choice([d.value for d in ReviewDecision], case_sensitive=False)
)
@click.option("--reviewer", default=None, help="Who decided (default: your user name).")
@state_option
@_stack_option
@_region_option
@_cdk_out_option
def decide(
    transaction_id: str,
    decision: str,
    reviewer: str | None,
    state_name: str,
    stack: str | None,
    region: str | None,
    cdk_out: Path,
) -> None:
    """Put a ReviewDecided for TRANSACTION_ID on the bus, as a case tool would."""
    with _session(state_name, stack, region, cdk_out, saves=True) as session:
        bus = session.plane.output(EVENT_BUS_OUTPUT)
        if not bus:
            raise click.ClickException(f"the stack has no {EVENT_BUS_OUTPUT} output")
        shown = redact_card_numbers(transaction_id)
        if session.runtime is not None:
            events = session.runtime.event_log.by_transaction.get(transaction_id, [])
            if not events:
                raise click.ClickException(f"no transaction {shown} in state {state_name!r}")
            if final_state(events) != "held":
                raise click.ClickException(
                    f"transaction {shown} is not held for review (it is {final_state(events)})"
                )
        detail = ReviewDecided(
            transaction_id=transaction_id,
            decision=ReviewDecision(decision),
            reviewer=reviewer or getpass.getuser(),
        ).to_detail()
        response = session.plane.events.put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": EventSource.REVIEW.value,
                    "DetailType": EventName.REVIEW_DECIDED.value,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise click.ClickException(f"the bus refused the decision: {response['Entries']}")
        click.echo(f"{decision} sent for {shown}")
        if session.runtime is not None:
            session.plane.settle()
            events = session.runtime.event_log.by_transaction.get(transaction_id, [])
            click.echo(f"  now: {final_state(events)}")
            session.command = {"command": "decide"}


# -- audit and check ---------------------------------------------------------------------


@main.command(short_help="The audit records of redrives and replays.")
@state_option
@click.option("--aws", "aws_records", is_flag=True,
              help=f"Those this machine made against AWS ({AWS_AUDIT_LOG}); the bus's "
              "archive holds every one as an OperationRecorded event.")  # fmt: skip
@_json_option
def audit(state_name: str, aws_records: bool, as_json: bool) -> None:
    """Who redrove or replayed what, when, and how many messages or events."""
    if aws_records:
        rows = (
            [json.loads(line) for line in AWS_AUDIT_LOG.read_text().splitlines() if line.strip()]
            if AWS_AUDIT_LOG.is_file()
            else []
        )
    else:
        state = _state(state_name, fresh=False)
        try:
            state.require()
        except StateError as error:
            raise click.ClickException(str(error)) from None
        rows = state.audit_records()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no redrive or replay recorded")
    for row in rows:
        what = (
            f"{row.get('handedBack', 0)} handed back, {row.get('failed', 0)} failed, from "
            + ", ".join(q["queue"] for q in row.get("queues", []))
            if row["action"] == "redrive"
            else f"{row.get('events')} events {row.get('from')} .. {row.get('to')} to "
            f"{', '.join(row.get('rules', []))}"
        )
        click.echo(f"{row['at']}  {row['who']:<24} {row['action']:<8} {what}")


@main.command(short_help="Is every transaction accounted for? (local state)")
@state_option
@_cdk_out_option
@_json_option
def check(state_name: str, cdk_out: Path, as_json: bool) -> None:
    """Every transaction written in exactly one final state, nothing posted twice, a zero
    trial balance: exit 1 if not."""
    with _session(state_name, None, None, cdk_out, saves=False) as session:
        accounting = _accounting(session)
        depths = status_of(session.plane)
    assert accounting is not None
    if as_json:
        click.echo(json.dumps(accounting.to_json(), indent=2))
    else:
        click.echo(_accounting_text(accounting))
        waiting = [q for q in depths.queues if q.dead_letter and q.visible]
        for queue in waiting:
            click.echo(f"  {queue.visible} messages in dead-letter queue {queue.name}")
    if accounting.problems:
        raise click.ClickException("not every transaction is accounted for")
