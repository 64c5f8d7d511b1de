"""``payments-local``: the command line for trying the pipeline on a laptop."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import click
from click.core import ParameterSource

from payment_local.assembly import AssemblyError, StackAssembly, check_fresh, load_assembly
from payment_local.event_log import load_events
from payment_local.faults import FaultPlan, FaultSpecError, fault_option
from payment_local.ledger_view import dump, ledger_of
from payment_local.pipeline_run import InputRecord, run_transactions
from payment_local.provision import UnsupportedResourceError
from payment_local.report import build_report, run_failures
from payment_local.runtime import LocalRuntime
from payment_local.send_input import InputFileError, read_records
from payment_local.state import DEFAULT_NAME, STATE_ENV, LocalState, StateError
from payment_posting_functions.domain.card_message import TransactionType, transaction_type
from payment_posting_functions.domain.event_names import EventName
from payment_posting_functions.domain.generator import (
    LIFECYCLE_MIX,
    Knobs,
    TransactionGenerator,
)
from payment_posting_functions.domain.ledger_v2.house import clearing_account
from payment_posting_functions.domain.money import format_minor_units
from payment_posting_functions.domain.pan import redact_card_numbers
from payment_posting_functions.domain.posting import Direction, PostingStatus

DEFAULT_REPORT = Path("reports") / "demo-report.json"
# How many ledger entries `balances` shows at once.
ENTRIES_PER_PAGE = 20


def _json_default(value: Any) -> Any:
    # Amounts a malformed record carries as fractions must stay exact, never become floats.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# The lifecycle knobs as options: (knob, help). Their defaults are the demo's mix
# (LIFECYCLE_MIX); --no-lifecycle sets every one to 0.
_LIFECYCLE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("atm_rate", "Fraction of new card transactions that are ATM withdrawals (0200)."),
    ("debit_pin_rate", "Fraction that are debit PIN purchases, posted at once (0200)."),
    ("inquiry_rate", "Fraction that are balance inquiries (0200, no amount)."),
    ("unmatched_clearing_rate", "Fraction that are clearings with no authorization (1240)."),
    ("clearing_rate", "Of the purchases: fraction cleared once, later in the stream (1240)."),
    ("split_shipment_rate", "Of the purchases: fraction cleared in two or three parts."),
    ("reversal_rate", "Of the purchases and ATM withdrawals: fraction reversed (0400)."),
    ("partial_reversal_share", "Of the reversals: fraction that reverse a part only."),
    ("refund_rate", "Of the purchases: fraction later refunded (processing code 20)."),
    ("amount_change_rate", "Of the lone clearings: fraction at another amount (tip, or less)."),
    ("advice_rate", "Fraction of authorizations, financials and reversals sent as advices."),
    ("currency_mismatch_rate", "Fraction billed in a currency other than the account's."),
)
_GAP_OPTIONS: tuple[tuple[str, str], ...] = (
    ("min_gap", "Fewest records between two messages of one card transaction."),
    ("max_gap", "Most records between them (a few more where places are taken)."),
)


def _rate_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The generator's knobs, shared by the commands that generate."""
    options = [
        click.option("--duplicate-rate", type=click.FloatRange(0, 1), default=0.05,
                     show_default=True,
                     help="Fraction of records that retransmit an earlier authorization."),
        click.option("--foreign-rate", type=click.FloatRange(0, 1), default=0.15,
                     show_default=True,
                     help="Fraction paid in a currency other than the billing currency."),
        click.option("--high-value-rate", type=click.FloatRange(0, 1), default=0.03,
                     show_default=True,
                     help="Fraction above the high-value threshold (10,000.00 EUR)."),
        click.option("--unknown-account-rate", type=click.FloatRange(0, 1), default=0.02,
                     show_default=True, help="Fraction for accounts the bank does not hold."),
        click.option("--malformed-rate", type=click.FloatRange(0, 1), default=0.02,
                     show_default=True, help="Fraction with a planted defect, to be quarantined."),
        click.option("--rule-break-rate", type=click.FloatRange(0, 1), default=0.02,
                     show_default=True,
                     help="Fraction well formed but failing a business rule, to be rejected."),
        *(
            click.option(f"--{name.replace('_', '-')}", type=click.FloatRange(0, 1),
                         default=getattr(LIFECYCLE_MIX, name), show_default=True, help=text)
            for name, text in _LIFECYCLE_OPTIONS
        ),
        *(
            click.option(f"--{name.replace('_', '-')}", type=click.IntRange(min=1),
                         default=getattr(LIFECYCLE_MIX, name), show_default=True, help=text)
            for name, text in _GAP_OPTIONS
        ),
        click.option("--no-lifecycle", is_flag=True,
                     help="Every record stands alone (every lifecycle rate 0): the mix of "
                     "earlier versions, with no clearings, reversals or refunds."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function


def _knobs(rates: dict[str, Any]) -> Knobs:
    """The knobs the options give; ``rates`` loses the --no-lifecycle flag on the way."""
    if rates.pop("no_lifecycle", False):
        context = click.get_current_context()
        given = [
            f"--{name.replace('_', '-')}"
            for name, _ in _LIFECYCLE_OPTIONS
            if context.get_parameter_source(name) is not ParameterSource.DEFAULT
        ]
        if given:
            raise click.UsageError(
                f"--no-lifecycle sets every lifecycle rate to 0; drop {', '.join(given)}"
            )
        rates.update({name: 0.0 for name, _ in _LIFECYCLE_OPTIONS})
    try:
        return Knobs(**rates)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


@click.group()
def main() -> None:
    """Try the event-driven payment-posting pipeline locally, without an AWS account.

    `run` is the demo; `send` pushes your own transactions through; `events` shows the
    lifecycle of one transaction from the last run; `generate` writes sample transactions.
    The pipeline is the one in cdk.out (`make synth`), run on moto in this process.
    """


@main.command(short_help="Generate sample transactions as JSON lines.")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="How many records to generate.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed for a reproducible set (give --start too for identical times).",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Transmission time of the first record, UTC if no zone (default: now).",
)
@_rate_options
@click.option(
    "--output",
    "-o",
    type=click.File("w"),
    default="-",
    help="Where to write JSON lines (default: standard output).",
)
@click.option(
    "--with-kind",
    is_flag=True,
    help="Wrap each record as {kind, duplicateOf, defect, ruleBreak, lifecycle, fate, follows, "
    "item}, to check a run.",
)
def generate(
    count: int,
    seed: int | None,
    start: datetime | None,
    output: TextIO,
    with_kind: bool,
    **rates: Any,
) -> None:
    """Generate sample card and ATM messages as JSON lines (the guidance's visa-mock).

    Each line is a transactions-table item; amounts are integer minor units. By default the
    card lifecycle is in the mix: authorizations cleared later in the stream, reversals,
    refunds, inquiries (--no-lifecycle: every record stands alone).
    """  # fmt: skip
    knobs = _knobs(rates)
    first = datetime.now(UTC) if start is None else start
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    for record in TransactionGenerator(knobs=knobs, seed=seed, start=first).generate(count):
        line: dict[str, Any] = record.item
        if with_kind:
            line = {
                "kind": record.kind.value,
                "duplicateOf": record.duplicate_of,
                "defect": record.defect.value if record.defect else None,
                "ruleBreak": record.rule_break.value if record.rule_break else None,
                "lifecycle": record.lifecycle.value,
                "fate": record.fate.value if record.fate else None,
                "follows": record.follows,
                "item": record.item,
            }
        output.write(json.dumps(line, default=_json_default) + "\n")


_cdk_out_option = click.option(
    "--cdk-out", type=click.Path(path_type=Path), default=Path("cdk.out"), show_default=True,
    help="The cloud assembly `make synth` wrote; the pipeline that runs is the one in it.",
)  # fmt: skip
_report_option = click.option(
    "--report", type=click.Path(path_type=Path), default=DEFAULT_REPORT, show_default=True,
    help="Where to write the JSON report (format: docs/report-format.md).",
)  # fmt: skip
_progress_option = click.option(
    "--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal)."
)
state_option = click.option(
    "--state", "state_name", default=DEFAULT_NAME, show_default=True, envvar=STATE_ENV,
    help="The named local state (.payments-local/NAME) to use: what earlier commands left "
    f"there is restored first, and this command's result is saved there (env {STATE_ENV}).",
)  # fmt: skip
_fresh_option = click.option(
    "--fresh", is_flag=True,
    help="Start the state clean: what it held is replaced, once this command has finished.",
)  # fmt: skip
_access_option = click.option(
    "--enforce-access/--no-enforce-access",
    default=True,
    show_default=True,
    help="Authorize every call of a function, pipe, rule or workflow against the template's "
    "IAM, resource and key policies, as AWS would; a refused call fails as on AWS, and the run "
    "fails if any was refused.",
)


def _pipeline_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """What `run` and `send` both take: where the template is, where the report and state
    go, how to show progress, whether access is enforced, and the faults to inject."""
    for option in reversed(
        (_cdk_out_option, _report_option, _progress_option, _access_option, state_option,
         _fresh_option, fault_option)
    ):  # fmt: skip
        function = option(function)
    return function


@main.command(short_help="Run the pipeline locally on generated transactions (the demo).")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="How many transactions to generate and send.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the generator, for a repeatable mix (default: 7, or in a state that "
    "already has runs, the next seed it has not used, so the transactions are new).",
)
@_rate_options
@_pipeline_options
def run(
    count: int,
    seed: int | None,
    cdk_out: Path,
    report: Path,
    progress: bool | None,
    enforce_access: bool,
    state_name: str,
    fresh: bool,
    faults: FaultPlan,
    fault_seed: int,
    **rates: Any,
) -> None:
    """Run the synthesized pipeline on this machine, on moto, with generated transactions.

    Every transaction written is followed to its last lifecycle event; the summary counts
    them per stage and final state, and the command fails if any is unaccounted for. The
    result is kept in the local state (--state), so `status`, `redrive`, `replay`,
    `decide`, `events` and `balances` can look at it afterwards; --fresh starts it clean.
    """  # fmt: skip
    knobs = _knobs(rates)
    state = _state(state_name, fresh)
    used = {c.get("seed") for c in state.meta.get("commands", []) if c.get("command") == "run"}
    if seed is None:
        seed = next(s for s in range(7, 7 + len(used) + 2) if s not in used)
    elif seed in used:
        raise click.UsageError(
            f"seed {seed} was used before in state {state.name!r}: its transactions are "
            "there already; give another --seed, or --fresh to start clean"
        )
    records = list(TransactionGenerator(knobs=knobs, seed=seed).generate(count))
    inputs = {"count": count, "seed": seed, "knobs": rates}
    _run_and_report(records, inputs, cdk_out, report, progress, enforce_access, state, faults)


@main.command(short_help="Send transactions from a JSON-lines file through the pipeline.")
@click.argument("source", type=click.File("r"))
@_pipeline_options
def send(
    source: TextIO,
    cdk_out: Path,
    report: Path,
    progress: bool | None,
    enforce_access: bool,
    state_name: str,
    fresh: bool,
    faults: FaultPlan,
    fault_seed: int,
) -> None:
    """Send table items from SOURCE (JSON lines, '-' for standard input) through the pipeline.

    Lines are items as `payments-local generate` writes them, optionally wrapped by its
    --with-kind flag so the summary can check duplicates against what was planted.
    """  # fmt: skip
    records = _read_records(source)
    inputs = {"count": len(records), "source": source.name}
    state = _state(state_name, fresh)
    _run_and_report(records, inputs, cdk_out, report, progress, enforce_access, state, faults)


@main.command(short_help="Show the lifecycle of one transaction from the last run.")
@click.argument("transaction_id")
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    default=None,
    show_default=True,
    help="The event log to read (default: the --state folder's events.jsonl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@state_option
def events(transaction_id: str, log_path: Path | None, as_json: bool, state_name: str) -> None:
    """Show every event of TRANSACTION_ID, in order, from the last `run` or `send`.

    Posting outcomes say what moved: the amount, the accounts, and each account's side
    (debit or credit).
    """  # fmt: skip
    log_path = log_path or _state(state_name, fresh=False).events_path
    if not log_path.is_file():
        raise click.ClickException(f"no event log at {log_path}: run `payments-local run` first")
    found = [e for e in load_events(log_path) if e.transaction_id == transaction_id]
    if not found:
        shown = redact_card_numbers(transaction_id)  # what was typed may itself be a card number
        raise click.ClickException(
            f"no events for transaction {shown} in {log_path} (the summary names example ids "
            "for each final state)"
        )
    if as_json:
        click.echo(json.dumps([e.to_json() for e in found], indent=2))
        return
    first = found[0].seen_at
    refund = _is_refund([e.detail for e in found])
    for event in found:
        said = " ".join(
            part
            for part in (_movement(event.detail_type, event.detail, refund),
                         _essentials(event.detail))
            if part
        )  # fmt: skip
        click.echo(redact_card_numbers(
            f"+{(event.seen_at - first) * 1000:7.1f} ms  {event.detail_type:<26} "
            f"{event.source:<20} {said}"
        ))  # fmt: skip


@main.command(short_help="Balances and entries of one account, from the last run's ledger.")
@click.argument("account_id")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path), default=None,
              help="The ledger to read (default: the --state folder's ledger.json).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=ENTRIES_PER_PAGE, show_default=True,
              help="Entries per page.")  # fmt: skip
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which page of entries, oldest first.")  # fmt: skip
@state_option
def balances(
    account_id: str, ledger_path: Path | None, limit: int, page: int, state_name: str
) -> None:
    """Show ACCOUNT_ID's posted and available balances and its entries, oldest first, a page
    at a time."""
    ledger_path = ledger_path or _state(state_name, fresh=False).ledger_path
    ledger = _load_ledger(ledger_path)
    try:
        rows = [b for b in ledger["balances"] if b["accountId"] == account_id]
        entries = [e for e in ledger["entries"] if e["accountId"] == account_id]
    except (KeyError, TypeError):
        raise click.ClickException(f"{ledger_path} is not a ledger a run saved") from None
    if not rows and not entries:
        raise click.ClickException(
            f"account {redact_card_numbers(account_id)} has no postings in {ledger_path}"
        )
    pages = max(1, -(-len(entries) // limit))
    if page > pages:
        raise click.UsageError(
            f"--page {page} is past the last page: {len(entries)} entries make {pages} "
            f"page{'s' if pages > 1 else ''} of {limit}"
        )
    for row in rows:
        currency = row["currency"]
        click.echo(f"{currency}  posted {format_minor_units(row['posted'], currency)}   "
                   f"available {format_minor_units(row['available'], currency)}")  # fmt: skip
    start = (page - 1) * limit
    shown = entries[start : start + limit]
    width = max((len(format_minor_units(e["amount"], e["currency"])) for e in shown), default=0)
    for entry in shown:
        amount = format_minor_units(entry["amount"], entry["currency"])
        click.echo(f"  {entry['postedAt']}  {amount:>{width}}  "
                   f"{entry['transactionId']}  against {entry['counterAccountId']}")  # fmt: skip
    click.echo(_page_footer(start, len(shown), len(entries), page, pages, limit))


def _page_footer(start: int, shown: int, total: int, page: int, pages: int, limit: int) -> str:
    """``entries 21-40 of 133; next: --page 3``: where this page is, and how to go on."""
    if not total:
        return "no entries"
    size = "" if limit == ENTRIES_PER_PAGE else f" --limit {limit}"
    where = f"entries {start + 1}-{start + shown} of {total}"
    return f"{where}; next: --page {page + 1}{size}" if page < pages else f"{where} (last page)"


@main.command("trial-balance", short_help="Sum of all balances per currency (zero if sound).")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path), default=None,
              help="The ledger to read (default: the --state folder's ledger.json).")  # fmt: skip
@state_option
def trial_balance(ledger_path: Path | None, state_name: str) -> None:
    """Sum every account's posted balance per currency; double entry makes each sum zero."""
    ledger_path = ledger_path or _state(state_name, fresh=False).ledger_path
    ledger = _load_ledger(ledger_path)
    totals: dict[str, int] = {}
    try:
        for row in ledger["balances"]:
            totals[row["currency"]] = totals.get(row["currency"], 0) + int(row["posted"])
    except (KeyError, TypeError, ValueError):
        raise click.ClickException(f"{ledger_path} is not a ledger a run saved") from None
    shown = {currency: format_minor_units(total, currency) for currency, total in totals.items()}
    width = max((len(text) for text in shown.values()), default=0)
    for currency, total in sorted(totals.items()):
        click.echo(f"{currency}  {shown[currency]:>{width}}  "
                   f"{'balanced' if total == 0 else 'UNBALANCED'}")  # fmt: skip
    if any(totals.values()):
        raise click.ClickException("the ledger does not balance")


def _load_ledger(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise click.ClickException(f"no ledger at {path}: run `payments-local run` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise click.ClickException(f"{path} is not a ledger a run saved (not JSON)") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} is not a ledger a run saved")
    return data


def _essentials(detail: dict[str, Any]) -> str:
    """The fields of a detail that say what happened, never the card token or amounts."""
    screening = detail.get("screening") or {}
    parts = [f"{k}={screening[k]}" for k in ("valid", "duplicate", "duplicateOf") if k in screening]
    if screening.get("invalidReason"):
        parts.append(f"reason={screening['invalidReason']!r}")
    for key in ("duplicateOf", "reasonCode", "reasons", "reason", "mcc", "decision"):
        if key in detail:
            parts.append(f"{key}={detail[key]!r}")
    enrichment = detail.get("enrichment") or {}
    if "postingAccountId" in enrichment:
        parts.append(f"postingAccount={enrichment['postingAccountId']}")
    return " ".join(parts)


def _is_refund(details: Sequence[dict[str, Any]]) -> bool:
    """Whether the transaction is a refund (processing code 20), by the message any of its
    events carries: a refund moves money to the cardholder, everything else from them."""
    for detail in details:
        code = (detail.get("transaction") or {}).get("processingCode")
        if isinstance(code, str):
            try:
                return transaction_type(code) is TransactionType.REFUND
            except ValueError:
                return False
    return False


def _movement(detail_type: str, detail: dict[str, Any], refund: bool) -> str:
    """What a posting outcome moved: amount, accounts, each one's side (``debit ACC-0014``:
    the account is debited); empty for an event that moves no money."""
    if detail_type == EventName.FOREIGN_TRANSACTION_FOUND:
        paid, billed = detail.get("transactionAmount"), detail.get("billingAmount")
        if isinstance(paid, dict) and isinstance(billed, dict):
            return (f"paid {format_minor_units(paid['amount'], paid['currency'])}, billed "
                    f"{format_minor_units(billed['amount'], billed['currency'])}")  # fmt: skip
    money = detail.get("amount") or detail.get("released")
    if detail_type not in _MOVING or not isinstance(money, dict):
        return ""
    try:
        currency = str(money["currency"])
        amount = format_minor_units(int(money["amount"]), currency)
    except (KeyError, TypeError, ValueError):
        return ""
    account = detail.get("accountId", "?")
    counter = detail.get("counterAccountId") or clearing_account(currency)
    # From the account's side: a purchase debits the cardholder, a refund credits them.
    if detail_type == EventName.TRANSACTION_POSTED:
        debited = detail.get("direction") != Direction.CREDIT
    else:
        debited = not refund
    if detail_type == EventName.REVERSAL_APPLIED:
        debited = not debited  # a reversal moves the money back
    sides = (
        f"debit {account}, credit {counter}" if debited else f"credit {account}, debit {counter}"
    )
    repeated = detail.get("postingStatus") == PostingStatus.ALREADY_POSTED
    repeat = " (a repeat: moved nothing)" if repeated else ""
    if detail_type == EventName.AUTHORIZATION_HELD:
        return f"{amount} held: {sides} (pending){repeat}"
    if detail_type == EventName.CLEARING_MATCHED:
        excess = int(detail.get("excess") or 0)
        above = f", {format_minor_units(excess, currency)} above the hold" if excess else ""
        final = "final" if detail.get("final") is not False else "partial"
        return f"{amount} cleared: {sides} ({final}{above}){repeat}"
    if detail_type == EventName.REVERSAL_APPLIED:
        if detail.get("appliedAs") == "VOID":
            return f"{amount} hold voided on {account}: pending released, nothing posted{repeat}"
        return f"{amount} reversed: {sides}{repeat}"
    if detail_type == EventName.HOLD_EXPIRED:
        return f"{amount} hold expired on {account}: pending released, nothing posted"
    if detail_type == EventName.POSTING_FAILED:
        return f"{amount} not posted to {account}"
    return f"{amount} posted: {sides}{repeat}"


# The posting system's outcomes (and the sweeper's expiry) that name money and accounts.
_MOVING = frozenset({
    EventName.TRANSACTION_POSTED, EventName.AUTHORIZATION_HELD, EventName.CLEARING_MATCHED,
    EventName.REVERSAL_APPLIED, EventName.HOLD_EXPIRED, EventName.POSTING_FAILED,
})  # fmt: skip


def _read_records(source: TextIO) -> list[InputRecord]:
    """Every record of SOURCE, checked in full before anything is written (``send_input``):
    a file that cannot be sent is a clear error that leaves the last run's state as it was."""
    name = "standard input" if source.name in ("-", "<stdin>") else str(source.name)
    # Read the bytes under the text stream click opened: a line that is not UTF-8 is then
    # named by its number, where decoding the stream would fail with no line to point at.
    raw = getattr(source, "buffer", None)
    lines: Iterable[bytes] = (
        iter(raw.readline, b"") if raw is not None else (line.encode("utf-8") for line in source)
    )
    try:
        return read_records(lines, redact_card_numbers(name))
    except InputFileError as error:
        raise click.ClickException(str(error)) from None
    except UnicodeDecodeError:  # only from a text stream without bytes beneath it
        raise click.ClickException(f"{name} is not UTF-8; save it as UTF-8") from None
    except OSError as error:
        raise click.ClickException(f"{name} cannot be read: {error.strerror}") from None


def _state(name: str, fresh: bool) -> LocalState:
    """The named state, its record of earlier commands read (none when starting fresh)."""
    try:
        state = LocalState(name)
        if fresh:
            state.start_fresh()
        else:
            state.load_meta()
    except StateError as error:
        raise click.ClickException(str(error)) from None
    return state


def _run_and_report(
    records: Sequence[InputRecord],
    inputs: dict[str, Any],
    cdk_out: Path,
    report_path: Path,
    progress: bool | None,
    enforce_access: bool,
    state: LocalState,
    faults: FaultPlan | None = None,
) -> None:
    show_progress = sys.stderr.isatty() if progress is None else progress
    assembly = _assembly(cdk_out, state)
    try:
        with (
            state.locked(),
            _scratch_log(state) as (function_log, log_path),
            _started(assembly, function_log, enforce_access, faults) as runtime,
        ):
            if state.exists and not state.fresh:
                state.restore(runtime)
            _refuse_known_ids(runtime, records, state)
            click.echo(_start_banner(runtime, state))
            with click.progressbar(
                length=len(records), label="transactions accounted for", file=sys.stderr,
                hidden=not show_progress, show_pos=True,
            ) as bar:  # fmt: skip
                result = run_transactions(runtime, records, on_progress=bar.update)
            summary = build_report(runtime, result, inputs)
            function_log.flush()
            state.save(
                runtime,
                ledger=_ledger_dump(runtime),
                written=[{"id": tx, "writtenAt": result.written_at.get(tx)} for tx in result.ids],
                command={"command": "run" if "seed" in inputs else "send", **inputs},
                function_log=log_path,
            )
    except StateError as error:
        raise click.ClickException(str(error)) from None
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(summary.to_json())
    click.echo(summary.to_text())
    click.echo(
        f"\nReport {report_path}   state {state.path} (event log, ledger, functions' log)\n"
        f"Next: `payments-local status{_state_flag(state)}` shows what waits in a queue; "
        f"`payments-local events ID{_state_flag(state)}` follows one transaction."
    )
    problems = run_failures(summary)
    if problems:
        raise click.ClickException("; ".join(problems))


def _state_flag(state: LocalState) -> str:
    return "" if state.name == DEFAULT_NAME else f" --state {state.name}"


def _assembly(cdk_out: Path, state: LocalState | None = None) -> StackAssembly:
    try:
        assembly = load_assembly(cdk_out)
        check_fresh(assembly)
    except AssemblyError as error:
        raise click.ClickException(str(error)) from None
    stack = state.meta.get("stack") if state is not None and not state.fresh else None
    if stack and stack != assembly.stack_name:
        raise click.ClickException(
            f"state {state.name!r} holds stack {stack}, but {cdk_out} has "  # type: ignore[union-attr]
            f"{assembly.stack_name}: use another --state, or --fresh to start this one clean"
        )
    return assembly


@contextmanager
def _scratch_log(state: LocalState) -> Iterator[tuple[TextIO, Path]]:
    """This command's functions' log, next to the state until it is saved into it."""
    path = state.root / f".{state.name}.functions.log"
    try:
        with path.open("w") as log:
            yield log, path
    finally:
        path.unlink(missing_ok=True)


def _refuse_known_ids(
    runtime: LocalRuntime, records: Sequence[InputRecord], state: LocalState
) -> None:
    """A transaction id the state's table already holds would overwrite its item, which
    the pipe never sees (it reads inserts): refuse it rather than lose it silently."""
    if not records:
        return
    table = runtime.output("TransactionsTableName")
    ids = [r.transaction_id for r in records]
    known: list[str] = []
    client = runtime.clients.dynamodb
    for start in range(0, len(ids), 100):
        keys = [{"transactionId": {"S": tx}} for tx in dict.fromkeys(ids[start : start + 100])]
        response = client.batch_get_item(
            RequestItems={table: {"Keys": keys, "ProjectionExpression": "transactionId"}}
        )
        known += [item["transactionId"]["S"] for item in response["Responses"].get(table, [])]
    if known:
        shown = ", ".join(redact_card_numbers(tx) for tx in known[:3])
        raise click.ClickException(
            f"{len(known)} transaction id(s) are in state {state.name!r} already ({shown}"
            f"{', ...' if len(known) > 3 else ''}): a retransmission keeps its id only within "
            "one file; use --fresh or another --state to send them again"
        )


def _ledger_dump(runtime: LocalRuntime) -> dict[str, Any] | None:
    ledger = ledger_of(runtime)
    return None if ledger is None else dump(runtime, ledger)


@contextmanager
def _started(
    assembly: StackAssembly,
    function_log: TextIO,
    enforce_access: bool = True,
    faults: FaultPlan | None = None,
) -> Iterator[LocalRuntime]:
    try:
        runtime = LocalRuntime(
            assembly, function_log=function_log, enforce_access=enforce_access, faults=faults
        ).__enter__()
    except (UnsupportedResourceError, FaultSpecError) as error:
        raise click.ClickException(str(error)) from None
    try:
        yield runtime
    finally:
        runtime.__exit__(None, None, None)


def _start_banner(runtime: LocalRuntime, state: LocalState | None = None) -> str:
    topology = runtime.topology
    skipped = Counter(topology.ignored.values())
    return "\n".join(
        [
            *(
                [
                    f"State {state.name!r} ({state.path}): "
                    + (
                        "starting clean"
                        if state.fresh or not state.meta
                        else f"restored, {len(state.written())} transactions from "
                        f"{len(state.meta.get('commands', []))} earlier commands"
                    )
                ]
                if state is not None
                else []
            ),
            f"Running {runtime.assembly.stack_name} from {runtime.assembly.directory} on moto: "
            f"{len(topology.functions)} functions, {len(topology.pipes)} pipes, "
            f"{len(topology.tap_targets)} rule targets, {len(topology.event_sources)} queue "
            "event sources.",
            *(f"  not run locally: {n} resources ({reason})" for reason, n in skipped.items()),
            *(
                [
                    f"  posting: over HTTPS to a fake core system at {runtime.core_banking.url} "
                    "(certificate from a CA generated for this run, given to the function as "
                    "its CA bundle; the token read from the stack's secret"
                    + (
                        "; mutual TLS: a client certificate from the same CA, put into the "
                        "stack's client certificate secret, required by the core system)"
                        if runtime.core_banking.requires_client_certificates
                        else ")"
                    )
                ]
                if runtime.core_banking
                else []
            ),
            "  access: every call of a template principal is checked against the template's "
            "IAM, resource and key policies (the runtime's own taps and event log are not)"
            if runtime.access.enforce
            else "  access: NOT checked (--no-enforce-access)",
            *(
                f"  access: condition {key} cannot be evaluated locally (used in "
                f"{', '.join(sorted(set(where)))}); treated as most restrictive"
                for key, where in runtime.access.model.unknown_condition_keys().items()
            ),
            *(f"  access: {note}" for note in runtime.access.model.notes),
        ]
    )


# The operating commands (status, redrive, replay, decide, audit, check) register on `main`.
from payment_local import operate_cli  # noqa: E402, F401

if __name__ == "__main__":
    main()
