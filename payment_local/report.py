"""The summary of a local run, for a person (text) and for other programs (JSON).

The JSON format is documented in docs/report-format.md; ``REPORT_VERSION`` changes when a
field changes meaning or goes away (adding a field does not change it).
"""

from __future__ import annotations

import json
import math
import resource
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payment_local.event_log import LoggedEvent
from payment_local.ledger_view import entries, ledger_of, trial_balance_reads
from payment_local.pipeline_run import RunResult, is_terminal
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.events import BY_NAME
from payment_posting_functions.domain.ledger_v2.model import TrialBalance
from payment_posting_functions.domain.pan import redact_card_numbers

REPORT_VERSION = 2


def final_state(events: list[LoggedEvent]) -> str:
    """The state the transaction is in after its last state-changing event.

    Side events (a foreign transaction found, a merchant category warning) inform without
    moving a transaction on, so they are passed over.
    """
    for event in reversed(events):
        model = BY_NAME.get(event.detail_type)
        if model is None:
            return event.detail_type
        if model.STATE is None:
            continue
        if event.detail_type == "TransactionAuthorized":
            screening = event.detail.get("screening", {})
            if not screening.get("valid", True):
                return "flagged invalid"
            if screening.get("duplicate"):
                return "flagged duplicate"
        return model.STATE
    return "unknown"


def _last(events: list[LoggedEvent], detail_type: str) -> LoggedEvent | None:
    return next((e for e in reversed(events) if e.detail_type == detail_type), None)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _without_card_numbers(value: Any) -> Any:
    """Every string in a report, card numbers redacted: the last guard before a file or screen.

    Nothing the pipeline emits should hold one (tests/e2e/test_no_card_numbers.py checks that
    at the source); this keeps a report from ever becoming the place one is stored.
    """
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, dict):
        return {_without_card_numbers(k): _without_card_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_card_numbers(item) for item in value]
    return value


@dataclass
class RunReport:
    data: dict[str, Any]

    def __post_init__(self) -> None:
        self.data = _without_card_numbers(self.data)

    @property
    def unaccounted(self) -> list[str]:
        unaccounted: list[str] = self.data["transactions"]["unaccounted"]
        return unaccounted

    @property
    def denials(self) -> list[dict[str, Any]]:
        denials: list[dict[str, Any]] = self.data["access"]["denials"]
        return denials

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=False) + "\n"

    def to_text(self) -> str:
        d = self.data
        tx = d["transactions"]
        lines = [
            f"Transactions written   {tx['written']:>7}   "
            + ", ".join(f"{kind} {n}" for kind, n in d["input"]["generated"].items()),
            f"Reached a final state  {tx['accounted']:>7}   unaccounted {len(tx['unaccounted'])}",
            "",
            "Events by type",
            *(f"  {name:<28}{count:>7}" for name, count in d["events"].items()),
            "",
            "Final state per transaction",
            *(f"  {state:<28}{count:>7}" for state, count in d["finalStates"].items()),
            "",
            f"Duplicates flagged     {d['duplicates']['flagged']:>7}   "
            f"with the generator's first id {d['duplicates']['matchingGenerator']}",
            f"Quarantined            {d['quarantine']['count']:>7}",
            *(f"  {count:>5} x {reason}" for reason, count in d["quarantine"]["reasons"].items()),
            "",
            "Business rules",
            *(f"  rejected {code:<19}{n:>7}" for code, n in d["rules"]["rejected"].items()),
            *(f"  held {reason:<23}{n:>7}" for reason, n in d["rules"]["held"].items()),
            *(f"  side event {name:<17}{n:>7}" for name, n in d["rules"]["sideEvents"].items()),
            "",
            "Posting",
            f"  posted                     {d['posting']['posted']:>7}"
            f"   (to suspense {d['posting']['toSuspense']}, "
            f"repeats {d['posting']['alreadyPosted']})",
            *(f"  failed: {reason:<20}{n:>7}" for reason, n in d["posting"]["failed"].items()),
            *_where_posted(d["posting"]),
            "",
            "What the generator planted, and where it ended",
            *(f"  {outcome:<45}{n:>5}" for outcome, n in d["planted"].items()),
            "",
            "Dead-letter queues     "
            + (", ".join(f"{name} {n}" for name, n in d["deadLetterQueues"].items()) or "none"),
            f"Latency write -> last event   p50 {d['latencyMs']['p50']:.0f} ms   "
            f"p95 {d['latencyMs']['p95']:.0f} ms   max {d['latencyMs']['max']:.0f} ms",
            f"Throughput             {d['throughputPerSecond']:>7.1f} transactions/s "
            f"({tx['written']} in {d['elapsedSeconds']:.1f} s, peak memory "
            f"{d['peakMemoryMb']:.0f} MB)",
            "",
            *_access_lines(d["access"]),
        ]
        return "\n".join(lines)


def _access_lines(access: dict[str, Any]) -> list[str]:
    if not access["enforced"]:
        return ["Access checks          off: IAM, resource and key policies were not checked"]
    lines = [
        f"Access checks          {access['checks']:>7}   (IAM, resource and key policies)   "
        f"denied {sum(d['count'] for d in access['denials'])}"
    ]
    for denial in access["denials"]:
        lines.append(
            f"  DENIED {denial['count']:>5} x {denial['principal']}: {denial['action']} on "
            f"{denial['resource']}"
        )
    for key in access["unknownConditionKeys"]:
        lines.append(f"  not evaluated (treated as most restrictive): condition {key}")
    lines += [f"  note: {note}" for note in access["notes"]]
    return lines


def build_report(runtime: LocalRuntime, run: RunResult, inputs: dict[str, Any]) -> RunReport:
    by_tx = runtime.event_log.by_transaction
    written = run.written_at
    seen = {tx for tx in written if by_tx.get(tx)}
    finished = [tx for tx in seen if any(is_terminal(e) for e in by_tx[tx])]
    states = Counter(final_state(by_tx[tx]) for tx in seen)
    expected = dict(zip(run.ids, run.records, strict=True))

    flagged = {tx: _last(by_tx[tx], "DuplicateFlagged") for tx in seen}
    duplicates = {tx: event for tx, event in flagged.items() if event is not None}
    matching = sum(
        1 for tx, event in duplicates.items()
        if event.detail.get("duplicateOf") == expected[tx].duplicate_of
    )  # fmt: skip
    quarantined = [e for tx in seen if (e := _last(by_tx[tx], "TransactionQuarantined"))]
    rejected = [e for tx in seen if (e := _last(by_tx[tx], "TransactionRejected"))]
    held = [e for tx in seen if (e := _last(by_tx[tx], "TransactionHeld"))]
    latencies = [(by_tx[tx][-1].seen_at - written[tx]) * 1000 for tx in finished]
    events = Counter(
        event.detail_type for event in runtime.event_log.events if event.transaction_id in written
    )
    planted = Counter(
        f"{r.planted} -> {final_state(by_tx[tx]) if tx in seen else '-'}"
        for tx, r in zip(run.ids, run.records, strict=True)
        if r.planted
    )
    data = {
        "reportVersion": REPORT_VERSION,
        "generatedAt": datetime.now(UTC).isoformat(),
        "stack": runtime.assembly.stack_name,
        "input": {
            **inputs,
            "generated": dict(Counter(r.kind_label or "unlabelled" for r in run.records)),
        },
        "transactions": {
            "written": len(written),
            "accounted": len(finished),
            "unaccounted": sorted(set(written) - set(finished)),
        },
        "events": dict(events.most_common()),
        "finalStates": dict(states.most_common()),
        "duplicates": {"flagged": len(duplicates), "matchingGenerator": matching},
        "quarantine": {
            "count": len(quarantined),
            "reasons": dict(
                Counter(str(e.detail.get("reason")) for e in quarantined).most_common()
            ),
        },
        "rules": {
            "rejected": dict(
                Counter(str(e.detail.get("reasonCode")) for e in rejected).most_common()
            ),
            "held": dict(
                Counter(
                    reason for e in held for reason in e.detail.get("reasons", [])
                ).most_common()
            ),
            "sideEvents": {
                name: events[name]
                for name, model in BY_NAME.items()
                if model.STATE is None and events[name]
            },
        },
        "planted": dict(sorted(planted.items())),
        "posting": _posting_summary(runtime, seen, by_tx),
        "deadLetterQueues": dead_letter_depths(runtime),
        "latencyMs": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "max": round(max(latencies, default=0.0), 1),
        },
        "elapsedSeconds": round(run.elapsed, 3),
        "throughputPerSecond": round(len(written) / run.elapsed, 1) if run.elapsed else 0.0,
        "peakMemoryMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "functions": {
            f.logical_id: {"invocations": f.invocations, "errors": f.errors}
            for f in runtime.topology.functions.values()
        },
        "access": access_summary(runtime),
    }
    return RunReport(data)


def run_failures(report: RunReport) -> list[str]:
    """Why a run does not count as a success (empty: it does): a call the template's policies
    refuse, or a transaction without a final state."""
    problems = []
    if report.denials:
        refused = sum(d["count"] for d in report.denials)
        problems.append(
            f"{refused} calls were refused by the template's policies "
            f"({len(report.denials)} distinct; listed under Access checks): on AWS they "
            "would fail the same way"
        )
    if report.unaccounted:
        problems.append(
            f"{len(report.unaccounted)} transactions have no lifecycle event, e.g. "
            f"{', '.join(report.unaccounted[:5])}"
        )
    return problems


def access_summary(runtime: LocalRuntime) -> dict[str, Any]:
    """What the access check decided: how often, and every refusal (principal, action,
    resource, count); plus what in the template it could not evaluate."""
    access = runtime.access
    return {
        "enforced": access.enforce,
        "checks": sum(access.decided.values()),
        "seconds": round(access.seconds, 3),
        "denials": [denial.to_json() for denial in access.denials()],
        "unknownConditionKeys": sorted(access.model.unknown_condition_keys()),
        "notes": list(access.model.notes),
    }


def _where_posted(posting: dict[str, Any]) -> list[str]:
    """The ledger's entries and balance, or what the (fake) core system holds."""
    held = posting.get("coreBankingPostings")
    if held is not None:
        return [f"  held by the core system    {held:>7}   (HTTPS, fake core system, 127.0.0.1)"]
    balance = ", ".join(f"{c} {v}" for c, v in posting["trialBalance"].items())
    window = posting.get("trialBalanceReadAt")
    as_of = f"   (as of {window['from']} .. {window['to']})" if window else ""
    return [
        f"  ledger entries             {posting['ledgerEntries']:>7}",
        f"  trial balance              {balance or '-'}{as_of}",
    ]


def _read_window(reads: Iterable[TrialBalance]) -> dict[str, str] | None:
    """From the first read's start to the last one's end, to the millisecond, UTC."""
    listed = list(reads)
    if not listed:
        return None
    stamp = "%Y-%m-%dT%H:%M:%S.%f"
    return {
        "from": min(r.read_from for r in listed).strftime(stamp)[:-3] + "Z",
        "to": max(r.read_to for r in listed).strftime(stamp)[:-3] + "Z",
    }


def _posting_summary(
    runtime: LocalRuntime, seen: set[str], by_tx: dict[str, list[LoggedEvent]]
) -> dict[str, Any]:
    posted = [e for tx in seen if (e := _last(by_tx[tx], "TransactionPosted"))]
    failed = [e for tx in seen if (e := _last(by_tx[tx], "PostingFailed"))]
    ledger = ledger_of(runtime)
    reads = trial_balance_reads(runtime, ledger) if ledger else {}
    return {
        "posted": sum(e.detail.get("postingStatus") == "POSTED" for e in posted),
        "alreadyPosted": sum(e.detail.get("postingStatus") == "ALREADY_POSTED" for e in posted),
        "toSuspense": sum(e.detail.get("accountId", "").startswith("SUSPENSE") for e in posted),
        "failed": dict(Counter(str(e.detail.get("reasonCode")) for e in failed).most_common()),
        "trialBalance": {c: b.posted for c, b in reads.items()},
        # What it is as of: the window the balance items were read in, after the run went
        # idle (nothing in flight: exact as of any instant in it).
        "trialBalanceReadAt": _read_window(reads.values()),
        "ledgerEntries": len(entries(runtime)) if ledger else 0,
        # Posting over HTTP locally: what the fake core system holds (None: not this target).
        "coreBankingPostings": (
            len(runtime.core_banking.state.postings) if runtime.core_banking else None
        ),
    }


def dead_letter_depths(runtime: LocalRuntime) -> dict[str, int]:
    """Messages waiting in each queue the template uses as a dead-letter queue."""
    depths = {}
    for logical_id in sorted(dead_letter_queue_ids(runtime.assembly.template)):
        url = runtime.topology.queues.get(logical_id)
        if url is None:
            continue
        attributes = runtime.clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        depths[logical_id] = int(attributes["ApproximateNumberOfMessages"])
    return depths


def dead_letter_queue_ids(template: dict[str, Any]) -> set[str]:
    """Logical ids of queues named in any dead-letter setting of the template."""
    found: set[str] = set()

    def visit(value: Any, inside: bool) -> None:
        if isinstance(value, dict):
            if inside and "Fn::GetAtt" in value:
                found.add(value["Fn::GetAtt"][0])
            for key, item in value.items():
                visit(item, inside or key in ("DeadLetterConfig", "RedrivePolicy", "OnFailure"))
        elif isinstance(value, list):
            for item in value:
                visit(item, inside)

    visit(template.get("Resources", {}), False)
    resources = template.get("Resources", {})
    return {lid for lid in found if resources.get(lid, {}).get("Type") == "AWS::SQS::Queue"}
