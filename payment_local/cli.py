"""``payments-local``: the command line for trying the pipeline on a laptop."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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
from payment_local.pipeline_run import InputRecord, LabelledRecord, run_transactions
from payment_local.provision import UnsupportedResourceError
from payment_local.report import build_report, run_failures
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import (
    LIFECYCLE_MIX,
    Knobs,
    TransactionGenerator,
    lifecycle_label,
)
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.pan import redact_card_numbers

STATE_DIR = Path(".payments-local")
EVENT_LOG = STATE_DIR / "events.jsonl"
FUNCTION_LOG = STATE_DIR / "functions.log"
LEDGER_DUMP = STATE_DIR / "ledger.json"
DEFAULT_REPORT = Path("reports") / "demo-report.json"


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
_access_option = click.option(
    "--enforce-access/--no-enforce-access",
    default=True,
    show_default=True,
    help="Authorize every call of a function, pipe, rule or workflow against the template's "
    "IAM, resource and key policies, as AWS would; a refused call fails as on AWS, and the run "
    "fails if any was refused.",
)


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
    default=7,
    show_default=True,
    help="Seed of the generator, for a repeatable mix.",
)
@_rate_options
@_cdk_out_option
@_report_option
@_progress_option
@_access_option
@fault_option
def run(
    count: int,
    seed: int,
    cdk_out: Path,
    report: Path,
    progress: bool | None,
    enforce_access: bool,
    faults: FaultPlan,
    fault_seed: int,
    **rates: Any,
) -> None:
    """Run the synthesized pipeline on this machine, on moto, with generated transactions.

    Every transaction written is followed to its last lifecycle event; the summary counts
    them per stage and final state, and the command fails if any is unaccounted for.
    """  # fmt: skip
    knobs = _knobs(rates)
    records = list(TransactionGenerator(knobs=knobs, seed=seed).generate(count))
    inputs = {"count": count, "seed": seed, "knobs": rates}
    _run_and_report(records, inputs, cdk_out, report, progress, enforce_access, faults)


@main.command(short_help="Send transactions from a JSON-lines file through the pipeline.")
@click.argument("source", type=click.File("r"))
@_cdk_out_option
@_report_option
@_progress_option
@_access_option
@fault_option
def send(
    source: TextIO,
    cdk_out: Path,
    report: Path,
    progress: bool | None,
    enforce_access: bool,
    faults: FaultPlan,
    fault_seed: int,
) -> None:
    """Send table items from SOURCE (JSON lines, '-' for standard input) through the pipeline.

    Lines are items as `payments-local generate` writes them, optionally wrapped by its
    --with-kind flag so the summary can check duplicates against what was planted.
    """  # fmt: skip
    records = _read_records(source)
    inputs = {"count": len(records), "source": source.name}
    _run_and_report(records, inputs, cdk_out, report, progress, enforce_access, faults)


@main.command(short_help="Show the lifecycle of one transaction from the last run.")
@click.argument("transaction_id")
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    default=EVENT_LOG,
    show_default=True,
    help="The event log a run or send wrote.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def events(transaction_id: str, log_path: Path, as_json: bool) -> None:
    """Show every event of TRANSACTION_ID, in order, from the last `run` or `send`."""  # fmt: skip
    if not log_path.is_file():
        raise click.ClickException(f"no event log at {log_path}: run `payments-local run` first")
    found = [e for e in load_events(log_path) if e.transaction_id == transaction_id]
    if not found:
        shown = redact_card_numbers(transaction_id)  # what was typed may itself be a card number
        raise click.ClickException(f"no events for transaction {shown} in {log_path}")
    if as_json:
        click.echo(json.dumps([e.to_json() for e in found], indent=2))
        return
    first = found[0].seen_at
    for event in found:
        click.echo(f"+{(event.seen_at - first) * 1000:7.1f} ms  {event.detail_type:<26} "
                   f"{event.source:<20} {_essentials(event.detail)}")  # fmt: skip


@main.command(short_help="Balances and entries of one account, from the last run's ledger.")
@click.argument("account_id")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path), default=LEDGER_DUMP,
              show_default=True, help="The ledger a run or send saved.")  # fmt: skip
def balances(account_id: str, ledger_path: Path) -> None:
    """Show ACCOUNT_ID's posted and available balances and its entries, oldest first."""
    ledger = _load_ledger(ledger_path)
    rows = [b for b in ledger["balances"] if b["accountId"] == account_id]
    entries = [e for e in ledger["entries"] if e["accountId"] == account_id]
    if not rows and not entries:
        raise click.ClickException(f"account {account_id} has no postings in {ledger_path}")
    for row in rows:
        click.echo(f"{row['currency']}  posted {_major(row['posted'], row['currency'])}   "
                   f"available {_major(row['available'], row['currency'])}")  # fmt: skip
    for entry in entries:
        click.echo(f"  {entry['postedAt']}  {_major(entry['amount'], entry['currency']):>16}  "
                   f"{entry['transactionId']}  against {entry['counterAccountId']}")  # fmt: skip


@main.command("trial-balance", short_help="Sum of all balances per currency (zero if sound).")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path), default=LEDGER_DUMP,
              show_default=True, help="The ledger a run or send saved.")  # fmt: skip
def trial_balance(ledger_path: Path) -> None:
    """Sum every account's posted balance per currency; double entry makes each sum zero."""
    ledger = _load_ledger(ledger_path)
    totals: dict[str, int] = {}
    for row in ledger["balances"]:
        totals[row["currency"]] = totals.get(row["currency"], 0) + int(row["posted"])
    for currency, total in sorted(totals.items()):
        click.echo(f"{currency}  {total:>14}  {'balanced' if total == 0 else 'UNBALANCED'}")
    if any(totals.values()):
        raise click.ClickException("the ledger does not balance")


def _major(minor: int, currency: str) -> str:
    return (
        Money(amount=abs(int(minor)), currency=currency)
        .format()
        .replace(" ", " -" if int(minor) < 0 else " +", 1)
    )


def _load_ledger(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise click.ClickException(f"no ledger at {path}: run `payments-local run` first")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _save_ledger(runtime: LocalRuntime) -> None:
    ledger = ledger_of(runtime)
    if ledger is None:
        return
    LEDGER_DUMP.write_text(json.dumps(dump(runtime, ledger), indent=1))


def _essentials(detail: dict[str, Any]) -> str:
    """The fields of a detail that say what happened, never the card token or amounts."""
    screening = detail.get("screening") or {}
    parts = [f"{k}={screening[k]}" for k in ("valid", "duplicate", "duplicateOf") if k in screening]
    if screening.get("invalidReason"):
        parts.append(f"reason={screening['invalidReason']!r}")
    for key in ("duplicateOf", "reasonCode", "reasons", "reason", "mcc"):
        if key in detail:
            parts.append(f"{key}={detail[key]!r}")
    enrichment = detail.get("enrichment") or {}
    if "postingAccountId" in enrichment:
        parts.append(f"postingAccount={enrichment['postingAccountId']}")
    return " ".join(parts)


def _read_records(source: TextIO) -> list[InputRecord]:
    records: list[InputRecord] = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as error:
            raise click.ClickException(f"line {number} is not JSON: {error.msg}") from None
        labelled = isinstance(data, dict) and "item" in data and "kind" in data
        item = data["item"] if labelled else data
        if not isinstance(item, dict) or not isinstance(item.get("transactionId"), str):
            raise click.ClickException(f"line {number} has no string transactionId")
        records.append(
            LabelledRecord(
                item=item,
                kind_label=data["kind"] if labelled else None,
                duplicate_of=data.get("duplicateOf") if labelled else None,
                planted=(data.get("defect") or data.get("ruleBreak")) if labelled else None,
                lifecycle_label=(
                    lifecycle_label(data["lifecycle"], data.get("fate"))
                    if labelled and isinstance(data.get("lifecycle"), str)
                    else None
                ),
                follows=data.get("follows") if labelled else None,
            )
        )
    return records


def _run_and_report(
    records: Sequence[InputRecord],
    inputs: dict[str, Any],
    cdk_out: Path,
    report_path: Path,
    progress: bool | None,
    enforce_access: bool = True,
    faults: FaultPlan | None = None,
) -> None:
    show_progress = sys.stderr.isatty() if progress is None else progress
    try:
        assembly = load_assembly(cdk_out)
        check_fresh(assembly)
    except AssemblyError as error:
        raise click.ClickException(str(error)) from None
    STATE_DIR.mkdir(exist_ok=True)
    with (
        FUNCTION_LOG.open("w") as function_log,
        _started(assembly, function_log, enforce_access, faults) as runtime,
    ):
        click.echo(_start_banner(runtime))
        with click.progressbar(
            length=len(records), label="transactions accounted for", file=sys.stderr,
            hidden=not show_progress, show_pos=True,
        ) as bar:  # fmt: skip
            result = run_transactions(runtime, records, on_progress=bar.update)
        runtime.event_log.save(EVENT_LOG)
        _save_ledger(runtime)
        summary = build_report(runtime, result, inputs)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(summary.to_json())
    click.echo(summary.to_text())
    click.echo(f"\nReport {report_path}   event log {EVENT_LOG}   function log {FUNCTION_LOG}")
    problems = run_failures(summary)
    if problems:
        raise click.ClickException("; ".join(problems))


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


def _start_banner(runtime: LocalRuntime) -> str:
    topology = runtime.topology
    skipped = Counter(topology.ignored.values())
    return "\n".join(
        [
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


if __name__ == "__main__":
    main()
