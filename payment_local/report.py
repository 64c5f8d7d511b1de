"""The summary of a local run, for a person (text) and for other programs (JSON).

The JSON format is documented in docs/report-format.md; ``REPORT_VERSION`` changes when a
field changes meaning or goes away (adding a field does not change it).
"""

from __future__ import annotations

import json
import math
import resource
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payment_local.event_log import LoggedEvent
from payment_local.faults import fault_lines, fault_problems, fault_summary
from payment_local.ledger_view import balances, entries, ledger_of, pendings, trial_balance_reads
from payment_local.pipeline_run import RunResult, has_outcome, held_for_review, is_terminal
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.card_message import MessageClass
from payment_posting_functions.domain.event_names import EventName
from payment_posting_functions.domain.events import BY_NAME
from payment_posting_functions.domain.ledger_v2.model import (
    Balance,
    PendingState,
    PendingStatus,
    TrialBalance,
)
from payment_posting_functions.domain.money import format_minor_units
from payment_posting_functions.domain.pan import redact_card_numbers
from payment_posting_functions.domain.posting import Direction, PostingStatus

REPORT_VERSION = 2


def final_state(events: list[LoggedEvent]) -> str:
    """The state the transaction is in after its last state-changing event.

    Side events (a foreign transaction found, a merchant category warning) inform without
    moving a transaction on, so they are passed over. So is an enrichment replayed from the
    archive (``replayOf``): it moves the transaction on only through the events it leads to,
    and leads to none when the outcome stands (a held transaction a person has decided).
    """
    for event in reversed(events):
        if event.detail.get("replayOf"):
            continue
        model = BY_NAME.get(event.detail_type)
        if model is None:
            return event.detail_type
        if model.STATE is None:
            continue
        if event.detail_type == EventName.TRANSACTION_AUTHORIZED:
            screening = event.detail.get("screening", {})
            if not screening.get("valid", True):
                return "flagged invalid"
            if screening.get("duplicate"):
                return "flagged duplicate"
        return model.STATE
    return "unknown"


def _last(events: list[LoggedEvent], detail_type: EventName) -> LoggedEvent | None:
    return next((e for e in reversed(events) if e.detail_type == detail_type), None)


def outcome(events: list[LoggedEvent]) -> str:
    """The final state, with what a reader checks it by: a rejection's reason code, and a
    hold's expiry (a side event after the authorization's terminal one)."""
    state = final_state(events)
    rejected = _last(events, EventName.TRANSACTION_REJECTED)
    if rejected is not None and state == BY_NAME[EventName.TRANSACTION_REJECTED].STATE:
        state += f" {rejected.detail.get('reasonCode')}"
    if _last(events, EventName.HOLD_EXPIRED) is not None:
        state += ", hold expired"
    return state


# How many transaction ids the summary names as examples of each final state.
EXAMPLES_PER_STATE = 3


def state_examples(
    ids: Iterable[str], by_tx: Mapping[str, list[LoggedEvent]]
) -> dict[str, list[str]]:
    """The first few transactions (in the order written) to reach each final state, so a
    reader can follow one with ``payments-local events <id>``. The ids are the event log's:
    a record whose id held a card number is there by the ``redacted-key-...`` id the
    pipeline gave it, never by its own."""
    examples: dict[str, list[str]] = {}
    for tx in ids:
        events = by_tx.get(tx)
        if not events:
            continue
        shown = examples.setdefault(final_state(events), [])
        if len(shown) < EXAMPLES_PER_STATE:
            shown.append(redact_card_numbers(tx))
    return examples


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
            "Final state per transaction (e.g.: follow one with `payments-local events <id>`)",
            *(
                f"  {state:<28}{count:>7}   e.g. "
                + ", ".join(d["finalStateExamples"].get(state, []))
                for state, count in d["finalStates"].items()
            ),
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
            *_lifecycle_lines(d["lifecycle"]),
            f"  later messages in order    {d['lifecycleOrder']['pairs']:>7}   (reached their "
            f"outcome after the message before them; {d['lifecycleOrder']['overtook']} overtook "
            "it)",
            "",
            *_review_lines(d["reviews"]),
            "",
            *_ledger_lines(d["ledger"]),
            "",
            "What the generator planted, and where it ended",
            *(f"  {outcome:<45}{n:>5}" for outcome, n in d["planted"].items()),
            *(
                [
                    "",
                    "What each record was made to be in a card's life, and where it ended",
                    *(f"  {made:<66}{n:>5}" for made, n in d["generatedLifecycle"].items()),
                ]
                if d["generatedLifecycle"]
                else []
            ),
            "",
            "Dead-letter queues     "
            + (", ".join(f"{name} {n}" for name, n in d["deadLetterQueues"].items()) or "none"),
            f"Latency write -> outcome      p50 {d['latencyMs']['p50']:.0f} ms   "
            f"p95 {d['latencyMs']['p95']:.0f} ms   max {d['latencyMs']['max']:.0f} ms",
            f"Throughput             {d['throughputPerSecond']:>7.1f} transactions/s "
            f"({tx['written']} in {d['elapsedSeconds']:.1f} s, peak memory "
            f"{d['peakMemoryMb']:.0f} MB)",
            "",
            *_access_lines(d["access"]),
            *(["", *fault_lines(d.get("faults"))] if d.get("faults") else []),
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
    # A transaction held for review and then decided has finished when the outcome came.
    finished = [tx for tx in seen if has_outcome(by_tx[tx])]
    states = Counter(final_state(by_tx[tx]) for tx in seen)
    examples = state_examples(run.ids, by_tx)
    expected = dict(zip(run.ids, run.records, strict=True))

    flagged = {tx: _last(by_tx[tx], EventName.DUPLICATE_FLAGGED) for tx in seen}
    duplicates = {tx: event for tx, event in flagged.items() if event is not None}
    matching = sum(
        1 for tx, event in duplicates.items()
        if event.detail.get("duplicateOf") == expected[tx].duplicate_of
    )  # fmt: skip
    quarantined = [e for tx in seen if (e := _last(by_tx[tx], EventName.TRANSACTION_QUARANTINED))]
    rejected = [e for tx in seen if (e := _last(by_tx[tx], EventName.TRANSACTION_REJECTED))]
    held = [e for tx in seen if (e := _last(by_tx[tx], EventName.TRANSACTION_HELD))]
    # To the pipeline's first outcome: a review decision's, or a hold expiring days later on
    # the runtime's clock, is not the pipeline's latency.
    latencies = [
        (next(e for e in by_tx[tx] if is_terminal(e)).seen_at - written[tx]) * 1000
        for tx in finished
    ]
    events = Counter(
        event.detail_type for event in runtime.event_log.events if event.transaction_id in written
    )
    planted = Counter(
        f"{r.planted} -> {final_state(by_tx[tx]) if tx in seen else '-'}"
        for tx, r in zip(run.ids, run.records, strict=True)
        if r.planted
    )
    made = Counter(
        f"{r.lifecycle_label} -> {outcome(by_tx[tx]) if tx in seen else '-'}"
        for tx, r in zip(run.ids, run.records, strict=True)
        if r.lifecycle_label
    )
    ledger = ledger_of(runtime)
    reads = trial_balance_reads(runtime, ledger) if ledger else {}
    of_written = [event for tx in seen for event in by_tx[tx]]
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
        "finalStateExamples": {state: examples[state] for state, _ in states.most_common()},
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
        "generatedLifecycle": dict(sorted(made.items())),
        "posting": _posting_summary(runtime, seen, by_tx, reads),
        "lifecycle": lifecycle_summary(of_written),
        "lifecycleOrder": order_summary(run, runtime.event_log.events),
        "reviews": review_summary(run, by_tx),
        "ledger": (
            ledger_check(
                balances(runtime, ledger),
                pendings(runtime, ledger),
                reads,
                runtime.event_log.events,
                run.holds_expired_as_of,
            )
            if ledger
            else None
        ),
        "deadLetterQueues": (dead_letters := dead_letter_depths(runtime)),
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
        # Only when faults were asked for (--fault): payment_local/faults.py.
        "faults": fault_summary(runtime, dead_letters, set(written)) if runtime.faults else None,
    }
    return RunReport(data)


def run_failures(report: RunReport) -> list[str]:
    """Why a run does not count as a success (empty: it does): a call the template's policies
    refuse, a transaction without a final state, or a ledger whose books do not add up
    (``ledger_check``)."""
    problems = []
    if report.denials:
        refused = sum(d["count"] for d in report.denials)
        problems.append(
            f"{refused} calls were refused by the template's policies "
            f"({len(report.denials)} distinct; listed under Access checks): on AWS they "
            "would fail the same way"
        )
    # With faults, a transaction whose message waits in a dead-letter queue is not lost: a
    # redrive brings it back (the summary lists them).
    waiting = set((report.data.get("faults") or {}).get("deadLettered", []))
    lost = [tx for tx in report.unaccounted if tx not in waiting]
    if lost:
        problems.append(
            f"{len(lost)} transactions have no lifecycle event, e.g. {', '.join(lost[:5])}"
        )
    ledger = report.data.get("ledger")
    if ledger and ledger["problems"]:
        problems.append("the ledger check failed: " + "; ".join(ledger["problems"]))
    return problems + fault_problems(report.data.get("faults"))


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
    balance = _formatted(posting["trialBalance"])
    window = posting.get("trialBalanceReadAt")
    as_of = f"   (as of {window['from']} .. {window['to']})" if window else ""
    return [
        f"  ledger entries             {posting['ledgerEntries']:>7}",
        f"  trial balance              {balance}{as_of}",
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
    runtime: LocalRuntime,
    seen: set[str],
    by_tx: dict[str, list[LoggedEvent]],
    reads: Mapping[str, TrialBalance],
) -> dict[str, Any]:
    posted = [e for tx in seen if (e := _last(by_tx[tx], EventName.TRANSACTION_POSTED))]
    failed = [e for tx in seen if (e := _last(by_tx[tx], EventName.POSTING_FAILED))]
    ledger = ledger_of(runtime)
    return {
        "posted": sum(e.detail.get("postingStatus") == PostingStatus.POSTED for e in posted),
        "alreadyPosted": sum(
            e.detail.get("postingStatus") == PostingStatus.ALREADY_POSTED for e in posted
        ),
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


# -- the card lifecycle ---------------------------------------------------------------

# How many ids a list of the report shows at most (its problem text says how many in all).
_SHOWN = 20


def _sums(amounts: Iterable[Any]) -> dict[str, int]:
    """Money (``{amount, currency}`` details) summed per currency, in minor units."""
    totals: Counter[str] = Counter()
    for money in amounts:
        if isinstance(money, dict) and "currency" in money:
            totals[str(money["currency"])] += int(money.get("amount", 0))
    return dict(sorted(totals.items()))


def _formatted(sums: Mapping[str, int]) -> str:
    """``1,123.45 EUR, 9,000 JPY``: for a person; the JSON keeps the minor units."""
    return ", ".join(format_minor_units(v, c) for c, v in sums.items()) or "-"


def _booked(events: Iterable[LoggedEvent]) -> list[LoggedEvent]:
    # A repeat delivery (ALREADY_POSTED) moved nothing: counted apart, never twice.
    return [e for e in events if e.detail.get("postingStatus") != PostingStatus.ALREADY_POSTED]


def lifecycle_summary(events: Iterable[LoggedEvent]) -> dict[str, Any]:
    """What happened in the card transactions' lives, from the posting system's events:
    holds placed, clearings matched to them (or posted without one), reversals, expiries,
    inquiries; amounts in minor units per currency."""
    of: dict[str, list[LoggedEvent]] = {name: [] for name in EventName}
    for event in events:
        of.setdefault(event.detail_type, []).append(event)
    holds = of[EventName.AUTHORIZATION_HELD]
    placed = _booked(holds)
    clearings = _booked(of[EventName.CLEARING_MATCHED])
    posted = _booked(of[EventName.TRANSACTION_POSTED])
    forced_clearings = [
        e for e in posted
        if e.detail.get("messageClass") == MessageClass.CLEARING and e.detail.get("forcedReason")
    ]  # fmt: skip
    reversals = _booked(of[EventName.REVERSAL_APPLIED])
    expiries = of[EventName.HOLD_EXPIRED]
    return {
        "holds": {
            "placed": len(placed),
            "repeats": len(holds) - len(placed),
            "forced": sum(bool(e.detail.get("forcedReason")) for e in placed),
            "amount": _sums(e.detail.get("amount") for e in placed),
        },
        "clearings": {
            "matched": len(clearings),
            "final": sum(e.detail.get("final") is True for e in clearings),
            "partial": sum(e.detail.get("final") is False for e in clearings),
            "aboveTheHold": sum(int(e.detail.get("excess") or 0) > 0 for e in clearings),
            "amount": _sums(e.detail.get("amount") for e in clearings),
            "withoutAuthorization": len(forced_clearings),
            "withoutAuthorizationAmount": _sums(e.detail.get("amount") for e in forced_clearings),
        },
        "posted": {
            "byMessageClass": dict(
                sorted(Counter(str(e.detail.get("messageClass")) for e in posted).items())
            ),
            "credits": sum(e.detail.get("direction") == Direction.CREDIT for e in posted),
            "amount": _sums(e.detail.get("amount") for e in posted),
        },
        # ReversalApplied.applied_as: VOID (a hold released) or CORRECTION (a posting undone).
        "reversals": {
            "void": sum(e.detail.get("appliedAs") == "VOID" for e in reversals),
            "correction": sum(e.detail.get("appliedAs") == "CORRECTION" for e in reversals),
            "partial": sum(e.detail.get("partial") is True for e in reversals),
            "amount": _sums(e.detail.get("amount") for e in reversals),
        },
        "expiries": {
            "count": len(expiries),
            "released": _sums(e.detail.get("released") for e in expiries),
        },
        "inquiries": len(of[EventName.INQUIRY_COMPLETED]),
    }


def order_summary(run: RunResult, events: Sequence[LoggedEvent]) -> dict[str, Any]:
    """For generated input: each later message of a card transaction against the one before
    it in the stream, by when each reached its outcome (its first terminal event, in the
    log's order). One that overtook the message before it was posted without it: a clearing
    before its hold was placed, a reversal before what it reverses."""
    outcome_at: dict[str, int] = {}
    for n, event in enumerate(events):
        tx = event.transaction_id
        if tx is not None and tx not in outcome_at and is_terminal(event):
            outcome_at[tx] = n
    before: dict[str, str] = {}
    pairs, overtaking = 0, []
    for tx, record in zip(run.ids, run.records, strict=True):
        first = record.follows
        if not first:
            continue
        earlier, before[first] = before.get(first, first), tx
        if tx in outcome_at and earlier in outcome_at:
            pairs += 1
            if outcome_at[tx] < outcome_at[earlier]:
                overtaking.append(tx)
    return {"pairs": pairs, "overtook": len(overtaking), "overtaking": overtaking[:_SHOWN]}


def review_summary(run: RunResult, by_tx: Mapping[str, list[LoggedEvent]]) -> dict[str, Any]:
    """The review decisions the run sent, and where each ended."""
    outcomes = Counter(
        f"{decision.value} -> "
        + (outcome(by_tx[tx]) if has_outcome(by_tx.get(tx, [])) else "no outcome yet")
        for tx, decision in run.review_decisions.items()
    )
    return {
        "taken": run.reviews_taken,
        "sent": dict(sorted(Counter(d.value for d in run.review_decisions.values()).items())),
        "outcomes": dict(sorted(outcomes.items())),
        "notDecided": sum(held_for_review(by_tx.get(tx, [])) for tx in run.written_at),
    }


def ledger_check(
    account_balances: Sequence[Balance],
    pending_states: Sequence[PendingState],
    trial: Mapping[str, TrialBalance],
    events: Iterable[LoggedEvent],
    expired_as_of: datetime | None,
) -> dict[str, Any]:
    """The built-in ledger's books after the run, checked three ways; ``problems`` says
    what does not add up (non-empty fails the run):

    - each account's pending debits and credits equal the remaining of its OPEN pendings
      (holds), the balance items and the pending items being written apart;
    - every pending is accounted for: each hold an ``AuthorizationHeld`` announced is in the
      ledger and each one in the ledger was announced, each EXPIRED one has its
      ``HoldExpired``, and none is still open past its expiry once the run let it expire;
    - per currency, posted balances sum to zero and pending debits equal pending credits.
    """
    open_holds = [p for p in pending_states if p.status is PendingStatus.OPEN]
    debits: Counter[str] = Counter()
    credits: Counter[str] = Counter()
    for pending in open_holds:
        debits[pending.debit_account_id] += pending.remaining
        credits[pending.credit_account_id] += pending.remaining
    mismatches = [
        {
            "accountId": b.account_id,
            "currency": b.currency,
            "pendingDebits": b.pending_debits,
            "openHoldsDebiting": debits[b.account_id],
            "pendingCredits": b.pending_credits,
            "openHoldsCrediting": credits[b.account_id],
        }
        for b in account_balances
        if (b.pending_debits, b.pending_credits) != (debits[b.account_id], credits[b.account_id])
    ]
    known = {b.account_id for b in account_balances}
    strays = sorted((set(debits) | set(credits)) - known)
    listed = list(events)
    announced = {
        str(e.detail["pendingId"])
        for e in listed
        if e.detail_type == EventName.AUTHORIZATION_HELD and e.detail.get("pendingId")
    }
    expiry_events = {
        str(e.detail["pendingId"])
        for e in listed
        if e.detail_type == EventName.HOLD_EXPIRED and e.detail.get("pendingId")
    }
    in_ledger = {p.pending_id for p in pending_states}
    expired = {p.pending_id for p in pending_states if p.status is PendingStatus.EXPIRED}
    overdue = sorted(
        p.pending_id
        for p in open_holds
        if expired_as_of is not None and p.expires_at is not None and p.expires_at <= expired_as_of
    )
    not_in_ledger = sorted(announced - in_ledger)
    not_announced = sorted(in_ledger - announced)
    unannounced_expiries = sorted(expired - expiry_events)
    unbalanced = sorted(c for c, t in trial.items() if not t.balanced)
    problems = []
    checks: tuple[tuple[int, str, list[str]], ...] = (
        (len(mismatches), "accounts whose pending balance is not their open holds' remaining",
         [str(m["accountId"]) for m in mismatches]),
        (len(strays), "accounts with open holds that the ledger does not list", strays),
        (len(not_in_ledger), "holds announced (AuthorizationHeld) with no pending in the ledger",
         not_in_ledger),
        (len(not_announced), "pendings in the ledger no AuthorizationHeld announced",
         not_announced),
        (len(unannounced_expiries), "expired pendings with no HoldExpired event",
         unannounced_expiries),
        (len(overdue), "holds still open past their expiry after the run let them expire",
         overdue),
        (len(unbalanced), "currencies whose trial balance is not zero", unbalanced),
    )  # fmt: skip
    for count, what, ids in checks:
        if count:
            problems.append(f"{count} {what}, e.g. {', '.join(ids[:3])}")
    return {
        "pendings": {
            "total": len(pending_states),
            **{s.value: sum(p.status is s for p in pending_states) for s in PendingStatus},
        },
        "openRemaining": _sums({"amount": p.remaining, "currency": p.currency} for p in open_holds),
        "holdsAnnounced": len(announced),
        "notInLedger": not_in_ledger[:_SHOWN],
        "notAnnounced": not_announced[:_SHOWN],
        "expiryEvents": len(expiry_events),
        "expiredWithoutEvent": unannounced_expiries[:_SHOWN],
        "expiredAsOf": expired_as_of.isoformat() if expired_as_of else None,
        "overdue": overdue[:_SHOWN],
        "accountsChecked": len(account_balances),
        "accountMismatches": mismatches[:_SHOWN],
        "trialBalances": {
            c: {
                "posted": t.posted,
                "pendingDebits": t.pending_debits,
                "pendingCredits": t.pending_credits,
                "balanced": t.balanced,
            }
            for c, t in trial.items()
        },
        "problems": problems,
    }


def _lifecycle_lines(life: dict[str, Any]) -> list[str]:
    holds, clearings, reversals = life["holds"], life["clearings"], life["reversals"]
    expiries, posted = life["expiries"], life["posted"]
    by_class = ", ".join(f"{c.lower()} {n}" for c, n in posted["byMessageClass"].items())
    return [
        "Card lifecycle (what the posting system did)",
        f"  holds placed (pending)     {holds['placed']:>7}   {_formatted(holds['amount'])}"
        f"   (advices {holds['forced']}, repeats {holds['repeats']})",
        f"  clearings matched to holds {clearings['matched']:>7}   "
        f"{_formatted(clearings['amount'])}   (final {clearings['final']}, partial "
        f"{clearings['partial']}, above the hold {clearings['aboveTheHold']})",
        f"  clearings without one      {clearings['withoutAuthorization']:>7}   "
        f"{_formatted(clearings['withoutAuthorizationAmount'])}   (posted, forced)",
        f"  posted                     {sum(posted['byMessageClass'].values()):>7}   "
        f"{_formatted(posted['amount'])}   ({by_class or '-'}; credits {posted['credits']})",
        f"  reversals applied          {reversals['void'] + reversals['correction']:>7}   "
        f"{_formatted(reversals['amount'])}   (void {reversals['void']}, correction "
        f"{reversals['correction']}, partial {reversals['partial']})",
        f"  holds expired              {expiries['count']:>7}   released "
        f"{_formatted(expiries['released'])}",
        f"  inquiries completed        {life['inquiries']:>7}   (no money moved)",
    ]


def _review_lines(reviews: dict[str, Any]) -> list[str]:
    if reviews["taken"] is None:
        return ["Review decisions       not sent (not asked for)"]
    if not reviews["taken"]:
        return [
            "Review decisions       not sent: no rule of the stack takes ReviewDecided "
            f"({reviews['notDecided']} held for review wait)"
        ]
    sent = ", ".join(f"{d.lower()} {n}" for d, n in reviews["sent"].items()) or "none"
    return [
        f"Review decisions       {sum(reviews['sent'].values()):>7}   ({sent}; "
        f"{reviews['notDecided']} held left waiting)",
        *(f"  {made:<45}{n:>5}" for made, n in reviews["outcomes"].items()),
    ]


def _ledger_lines(ledger: dict[str, Any] | None) -> list[str]:
    if ledger is None:
        return ["Ledger check           - (no built-in ledger: the core system keeps the books)"]
    p = ledger["pendings"]
    lines = [
        f"Ledger check           {'FAILED' if ledger['problems'] else 'ok'}",
        f"  pendings (holds)           {p['total']:>7}   open {p['OPEN']}, posted {p['POSTED']}, "
        f"voided {p['VOIDED']}, expired {p['EXPIRED']}   (announced {ledger['holdsAnnounced']}, "
        f"expiry events {ledger['expiryEvents']})",
        f"  open holds' remaining      {_formatted(ledger['openRemaining'])}"
        + (
            f"   (after expiry as of {ledger['expiredAsOf'][:19]}Z)"
            if ledger["expiredAsOf"]
            else ""
        ),
        f"  accounts checked           {ledger['accountsChecked']:>7}   pending debits and "
        f"credits = their open holds' remaining: {len(ledger['accountMismatches'])} differ",
        *(
            f"  trial balance {c}          posted {format_minor_units(t['posted'], c)}, pending "
            f"debits {format_minor_units(t['pendingDebits'], c)} = credits "
            f"{format_minor_units(t['pendingCredits'], c)}: "
            f"{'balanced' if t['balanced'] else 'UNBALANCED'}"
            for c, t in ledger["trialBalances"].items()
        ),
        *(f"  PROBLEM: {problem}" for problem in ledger["problems"]),
    ]
    return lines
