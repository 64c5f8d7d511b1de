"""What the model prices, as resources: read from a template (``template.py``) or described
by hand (the guidance's design, the leaner option)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Function:
    id: str
    service: (
        str  # POWERTOOLS_SERVICE_NAME, or the logical id: what the duration profile is keyed by
    )
    memory_mb: int
    architecture: str  # arm64 | x86_64
    tracing: str  # Active | PassThrough
    app_log_level: str  # TRACE..FATAL; INFO when the function logs as text (no level filter)
    system_log_level: str  # the platform's START/END/REPORT lines are INFO
    tables: dict[str, str] = field(default_factory=dict)  # environment variable -> table id
    log_group: str | None = None
    env_key: str | None = None  # a customer managed key for environment variables


@dataclass
class Queue:
    id: str
    key: str | None  # customer managed key, None for SQS-managed or AWS managed encryption
    key_reuse_seconds: int = 300


@dataclass
class SqsSource:
    """An event source mapping from a queue to a function."""

    queue: str
    function: str
    batch_size: int
    window_seconds: float


@dataclass
class Pipe:
    id: str
    source_table: str
    batch_size: int
    window_seconds: float
    parallelization: int
    filters: list[dict[str, Any]]
    enrichment: str | None  # function id
    target: tuple[str, str]  # (kind, id): bus, statemachine
    key: str | None


@dataclass
class Target:
    kind: str  # function | queue | statemachine | topic | other
    id: str


@dataclass
class Rule:
    id: str
    pattern: dict[str, Any] | None
    schedule_seconds: float | None
    targets: list[Target]


@dataclass
class Archive:
    id: str
    pattern: dict[str, Any] | None
    retention_days: int | None  # None: kept for ever
    key: str | None


@dataclass
class Table:
    id: str
    on_demand: bool
    stream: bool
    pitr: bool
    key: str | None
    ttl: bool
    retention_days: float | None = None  # how long the time to live keeps an item


@dataclass
class StateMachine:
    id: str
    type: str  # EXPRESS | STANDARD
    tracing: bool
    log_level: str  # OFF | ERROR | FATAL | ALL
    key: str | None
    key_reuse_seconds: int = 300
    tables: list[str] = field(default_factory=list)
    # The source of the events the workflow publishes (its tasks are counted from them).
    publishes_source: str = "payments.rules"
    # Standard only: transitions per execution (docs/scale.md: 10 on the approved path).
    transitions_per_execution: float = 10.0


@dataclass
class SamplingRule:
    service: str  # the state machine id it names, or "*"
    fixed_rate: float
    reservoir: int


@dataclass
class LogGroup:
    id: str
    retention_days: int | None
    key: str | None


@dataclass
class Inventory:
    name: str
    functions: dict[str, Function] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    sqs_sources: list[SqsSource] = field(default_factory=list)
    pipes: list[Pipe] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    archives: list[Archive] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    state_machines: dict[str, StateMachine] = field(default_factory=dict)
    sampling_rules: list[SamplingRule] = field(default_factory=list)
    log_groups: dict[str, LogGroup] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    topics: dict[str, str | None] = field(default_factory=dict)  # topic id -> key
    bus_keys: dict[str, str | None] = field(default_factory=dict)  # bus id -> key
    email_subscriptions: int = 0
    alarm_metrics: int = 0
    alarm_high_resolution_metrics: int = 0
    dashboards: int = 0
    interface_endpoint_azs: int = 0
    nat_gateways: int = 0
    secrets: int = 0
    # Which block a resource's cost belongs to: "ledger" for the built-in ledger, else pipeline.
    ledger_ids: set[str] = field(default_factory=set)

    def block_of(self, resource_id: str) -> str:
        return "ledger" if resource_id in self.ledger_ids else "pipeline"
