"""Replay a window of the event archive back onto its bus, to the rules chosen.

EventBridge's replay sends each archived event whose time is in ``[start, end)`` to the
rules named (``FilterArns``; all the bus's rules when none are), marked with a
``replay-name`` field. That is safe here because everything downstream is idempotent: the
rules workflow's outcomes are the same again, the posting queue's consumer posts a transfer
id once, and what notifies people skips events that carry ``replay-name`` (nobody is told
twice).

An event filter, as EventBridge offers it, is a choice of rules: ``--detail-type T`` picks
the rules whose pattern takes an event of type T. Locally the runtime does what EventBridge
does, from the archive's saved events; on AWS it starts the replay and waits for it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from payment_local.operations.dead_letters import user_name
from payment_local.operations.planes import OperationError, Plane

REPLAY_WAIT_SECONDS = 900


@dataclass
class ReplayResult:
    name: str
    archive: str
    start: datetime
    end: datetime
    rules: list[str]
    dry_run: bool = False
    events: int | None = None  # archived events in the window (None: AWS does not say)
    by_type: Counter[str] = field(default_factory=Counter)
    deliveries: int | None = None
    state: str = ""
    transaction_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "replay": self.name,
            "archive": self.archive,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "rules": self.rules,
            "dryRun": self.dry_run,
            "events": self.events,
            "byType": dict(self.by_type),
            "deliveries": self.deliveries,
            "state": self.state,
        }


def archive_of(plane: Plane) -> tuple[str, str]:
    """The archive's logical id and the logical id of the bus it archives."""
    for logical_id, resource in plane.template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Events::Archive":
            source = resource.get("Properties", {}).get("SourceArn", {})
            bus = source.get("Fn::GetAtt", [None])[0] if isinstance(source, dict) else None
            if bus:
                return logical_id, str(bus)
    raise OperationError("the stack has no event archive to replay from")


def rules_of(plane: Plane, bus: str) -> dict[str, dict[str, Any]]:
    """The bus's rules with an event pattern, by user name (``posting-rule``)."""
    found = {}
    for logical_id, resource in plane.template.get("Resources", {}).items():
        props = resource.get("Properties", {}) or {}
        if resource.get("Type") != "AWS::Events::Rule" or "EventPattern" not in props:
            continue
        named = props.get("EventBusName")
        if isinstance(named, dict) and named.get("Ref") == bus:
            found[user_name(logical_id)] = {"logical_id": logical_id, **props}
    return found


def choose_rules(
    plane: Plane, bus: str, names: list[str], detail_types: list[str]
) -> dict[str, str]:
    """User name -> logical id of the rules a replay goes to."""
    rules = rules_of(plane, bus)
    unknown = [name for name in names if name not in rules]
    if unknown:
        raise OperationError(
            f"no rule {', '.join(unknown)} on the bus; rules: {', '.join(sorted(rules))}"
        )
    chosen = {name: rules[name]["logical_id"] for name in names} if names else {
        name: rule["logical_id"] for name, rule in rules.items()
    }  # fmt: skip
    if detail_types:
        chosen = {
            name: logical_id
            for name, logical_id in chosen.items()
            if _takes_any(rules[name].get("EventPattern") or {}, detail_types)
        }
        if not chosen:
            raise OperationError(f"no rule takes {', '.join(detail_types)}")
    # A rule that takes only events the archive does not keep would get nothing: said, not
    # replayed silently as zero events (the archive keeps the roots: docs/adr/0023).
    kept = archived_sources(plane)
    if kept is not None:
        reachable = {
            name: logical_id
            for name, logical_id in chosen.items()
            if _takes_source(rules[name].get("EventPattern") or {}, kept)
        }
        if not reachable:
            raise OperationError(
                f"the archive keeps only events of {', '.join(sorted(kept))}; "
                f"{', '.join(sorted(chosen))} take{'s' if len(chosen) == 1 else ''} none of "
                "them. Replay the events they were derived from (--detail-type "
                "TransactionAuthorized or ReviewDecided): the pipeline derives the rest again"
            )
        chosen = reachable
    return chosen


def archived_sources(plane: Plane) -> set[str] | None:
    """The ``source`` values the archive's pattern keeps; None when it keeps every source."""
    archive_id, _ = archive_of(plane)
    archive = plane.template["Resources"][archive_id].get("Properties", {})
    sources = (archive.get("EventPattern") or {}).get("source")
    return {str(source) for source in sources} if isinstance(sources, list) else None


def _takes_source(pattern: dict[str, Any], sources: set[str]) -> bool:
    wanted = pattern.get("source")
    # A content filter (prefix, anything-but) may match a kept source: counted as reachable.
    return wanted is None or any(not isinstance(s, str) or s in sources for s in wanted)


def _takes_any(pattern: dict[str, Any], detail_types: list[str]) -> bool:
    wanted = pattern.get("detail-type")
    return wanted is None or any(t in wanted for t in detail_types)


def replay_local(
    plane: Any, start: datetime, end: datetime, rules: dict[str, str], *, dry_run: bool
) -> ReplayResult:
    """As EventBridge does it, from the archive the local state kept."""
    from moto.events.models import events_backends

    archive_id, bus_id = archive_of(plane)
    runtime = plane.runtime
    backend = events_backends[runtime.environment.account][runtime.environment.region]
    archive_name = plane.ref(archive_id)
    archive = backend.archives.get(archive_name)
    if archive is None:
        raise OperationError(f"no archive {archive_name} in the local stack")
    bus = backend.event_buses[plane.ref(bus_id)]
    wanted = {plane.ref(logical_id).rpartition("|")[-1] for logical_id in rules.values()}
    targets = [rule for name, rule in bus.rules.items() if name in wanted]
    name = f"local-{uuid.uuid4().hex[:12]}"
    result = ReplayResult(name, archive_name, start, end, sorted(rules), dry_run=dry_run)
    archived: list[dict[str, Any]] = cast(Any, list(archive.events))
    window = [
        event for event in archived if start.timestamp() <= _event_time(event) < end.timestamp()
    ]
    result.events = len(window)
    result.by_type.update(str(event.get("detail-type")) for event in window)
    result.deliveries = 0
    for event in window:
        for rule in targets:
            if rule.event_pattern.matches_event(cast(Any, event)):
                result.deliveries += 1
                if not dry_run:
                    replayed = dict(event, **{"id": str(uuid.uuid4()), "replay-name": name})
                    rule.send_to_targets(cast(Any, replayed), transform_input=False)
        detail = event.get("detail") or {}
        if isinstance(detail, dict) and isinstance(detail.get("transactionId"), str):
            result.transaction_ids.append(detail["transactionId"])
    result.state = "DRY RUN" if dry_run else "COMPLETED"
    if not dry_run:
        plane.settle()
    return result


def _event_time(event: dict[str, Any]) -> float:
    value = event.get("time")
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def replay_aws(
    plane: Any, start: datetime, end: datetime, rules: dict[str, str], *, dry_run: bool
) -> ReplayResult:
    archive_id, bus_id = archive_of(plane)
    archive_name = plane.ref(archive_id)
    name = f"payments-{uuid.uuid4().hex[:12]}"
    result = ReplayResult(name, archive_name, start, end, sorted(rules), dry_run=dry_run)
    if dry_run:
        described = plane.events.describe_archive(ArchiveName=archive_name)
        result.state = f"DRY RUN (the archive holds {described.get('EventCount', '?')} events)"
        return result
    plane.events.start_replay(
        ReplayName=name,
        Description="payments-local replay",
        EventSourceArn=plane.arn(archive_id),
        EventStartTime=start,
        EventEndTime=end,
        Destination={
            "Arn": plane.arn(bus_id),
            "FilterArns": [plane.arn(logical_id) for logical_id in rules.values()],
        },
    )
    deadline = time.time() + REPLAY_WAIT_SECONDS
    while time.time() < deadline:
        state = plane.events.describe_replay(ReplayName=name)
        result.state = str(state["State"])
        if result.state in ("COMPLETED", "FAILED", "CANCELLED"):
            if state.get("StateReason"):
                result.state += f" ({state['StateReason']})"
            break
        time.sleep(5)
    return result


def describe(result: ReplayResult) -> str:
    return json.dumps(result.to_json())
