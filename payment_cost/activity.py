"""The activity of a local run (``make demo``): the events each record put on the bus, the
outcome mix, how much each function logged, and the custom metrics it emitted.

The local runtime writes its state to ``.payments-local/<name>/`` (``payment_local/state.py``)
and its summary to ``reports/demo-report.json`` (``payment_local/report.py``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payment_cost.errors import CostInputError

DEFAULT_STATE = Path(".payments-local") / "default"
DEFAULT_REPORT = Path("reports") / "demo-report.json"
# Final states in which a card's authorization has run its course with money moved or given back.
COMPLETED_STATES = ("cleared", "posted", "reversed")
# The fields EventBridge adds around a detail (id, version, time, account, region, resources):
# measured on an event as a bus delivers it, about this many bytes besides source and type.
ENVELOPE_BYTES = 200
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "EXCEPTION": "ERROR"}


@dataclass(frozen=True)
class BusEvent:
    source: str
    detail_type: str
    detail: dict[str, Any]

    @property
    def envelope(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "detail-type": self.detail_type,
            "detail": self.detail,
            "account": "123456789012",
            "region": "us-east-1",
        }

    @property
    def size_bytes(self) -> int:
        return ENVELOPE_BYTES + len(
            json.dumps(
                {"source": self.source, "detail-type": self.detail_type, "detail": self.detail}
            )
        )


@dataclass
class Activity:
    """What ``records`` records written to the transactions table did."""

    records: int
    events: list[BusEvent]
    final_states: dict[str, int]
    completed_lifecycles: int
    # service -> level -> bytes logged in the run; and the invocations they came from
    log_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    invocations: dict[str, int] = field(default_factory=dict)
    # The custom metrics (namespace, name, dimensions) the embedded metric format lines
    # declared. Locally every function shares one Powertools Metrics object in one process, so
    # which function publishes which is not told apart. Lambda gives a line without a "level"
    # the level INFO.
    custom_metrics: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)
    record_bytes: int = 1024
    # table logical id -> bytes of the items the run left in it (DynamoDB JSON)
    table_bytes: dict[str, int] = field(default_factory=dict)
    origin: str = ""

    def per_record(self, count: float) -> float:
        return count / self.records

    def events_by_type(self) -> dict[str, int]:
        return dict(Counter(e.detail_type for e in self.events).most_common())

    def log_bytes_per_invocation(self, service: str, level: str) -> float | None:
        """Bytes per invocation of the lines at ``level`` or above; None if the run has none."""
        calls = self.invocations.get(service)
        if not calls:
            return None
        by_level = self.log_bytes.get(service, {})
        floor = LEVELS.index(level) if level in LEVELS else 0
        kept = sum(n for lvl, n in by_level.items() if LEVELS.index(lvl) >= floor)
        return kept / calls


def load_activity(state_dir: Path = DEFAULT_STATE, report_path: Path = DEFAULT_REPORT) -> Activity:
    events_file = state_dir / "events.jsonl"
    if not events_file.is_file() or not report_path.is_file():
        raise CostInputError(
            f"no local run to take the activity from ({events_file} and {report_path}): "
            "run `make demo` first"
        )
    try:
        report = json.loads(report_path.read_text())
        events = [
            BusEvent(d["source"], d["detailType"], d["detail"])
            for d in map(json.loads, events_file.read_text().splitlines())
        ]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise CostInputError(
            f"the run at {state_dir} is unreadable ({error}): run `make demo`"
        ) from None
    records = int(report.get("transactions", {}).get("written", 0))
    if records <= 0:
        raise CostInputError(f"{report_path} records no transactions written: run `make demo`")
    final_states = dict(report.get("finalStates", {}))
    completed = sum(
        n for state, n in final_states.items() if state.split(",")[0] in COMPLETED_STATES
    )
    function_services, log_bytes, metrics = _function_logs(state_dir / "functions.log")
    invocations: dict[str, int] = defaultdict(int)
    for name, counts in report.get("functions", {}).items():
        service = function_services.get(name, name)
        invocations[service] += int(counts.get("invocations", 0))
    authorized = [e for e in events if e.detail_type == "TransactionAuthorized"]
    record_bytes = (
        sum(len(json.dumps(e.detail)) for e in authorized) // len(authorized)
        if authorized
        else 1024
    )
    return Activity(
        records=records,
        events=events,
        final_states=final_states,
        completed_lifecycles=completed,
        log_bytes=log_bytes,
        invocations=dict(invocations),
        custom_metrics=metrics,
        record_bytes=record_bytes,
        table_bytes=_table_bytes(state_dir / "tables.jsonl"),
        origin=f"{report_path} and {state_dir}",
    )


MetricKey = tuple[str, str, tuple[str, ...]]


def _function_logs(
    path: Path,
) -> tuple[dict[str, str], dict[str, dict[str, int]], set[MetricKey]]:
    """Function name -> service, bytes by service and level, and how many distinct custom
    metrics (name and dimensions) the embedded metric format lines declared."""
    services: dict[str, str] = {}
    by_service: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    metrics: set[MetricKey] = set()
    if not path.is_file():
        return services, {}, set()
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        service = str(entry.get("service", "?"))
        function = entry.get("function_name")
        if isinstance(function, str):
            # The runtime names a function <stack>-<logical id>; the report keys by logical id.
            services[function.rsplit("-", 1)[-1]] = service
        for block in (entry.get("_aws") or {}).get("CloudWatchMetrics", []):
            for dimensions in block.get("Dimensions", [[]]):
                dims = tuple(sorted(f"{d}={entry.get(d)}" for d in dimensions))
                for metric in block.get("Metrics", []):
                    metrics.add((block.get("Namespace", ""), metric.get("Name", ""), dims))
        # Lambda's log-level filtering: a missing or unknown level is INFO
        # (docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
        level = str(entry.get("level", "INFO")).upper()
        level = _LEVEL_ALIASES.get(level, level if level in LEVELS else "INFO")
        by_service[service][level] += len(line) + 1
    return services, {s: dict(v) for s, v in by_service.items()}, metrics


def _table_bytes(path: Path) -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    if not path.is_file():
        return {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "table" in row:
            sizes[str(row["table"])] += len(json.dumps(row.get("item", {})))
    return dict(sizes)
