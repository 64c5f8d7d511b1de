"""The guidance's own design, described as resources and priced by the same model.

Read from the guidance's text (/work/shared/seed, "Guidance for Building Payment Systems Using
Event-Driven Architecture on AWS"): a table and its stream, a pipe with a deduplication
function to a custom bus, a rule to an enrichment function, a rule to a Standard workflow
(three state transitions an execution, its cost table), a rule to an SQS buffer and a posting
function that publishes the final event; archives of the events rules match; X-Ray across the
components; an email notification per transaction (its cost table: 3,000 SNS requests and 3,000
emails for 3,000 transactions); functions of 128 MB running 200 ms. What the text leaves open is
taken as the services' defaults: x86_64, AWS-owned keys, logs kept for ever, no batching window.
"""

from __future__ import annotations

from payment_cost import assumptions as a
from payment_cost.activity import Activity, BusEvent
from payment_cost.inventory import (
    Archive,
    Function,
    Inventory,
    LogGroup,
    Pipe,
    Queue,
    Rule,
    SqsSource,
    StateMachine,
    Table,
    Target,
)

GUIDANCE_MONTHLY_ESTIMATE = 1811.15  # its AWS Pricing Calculator estimate, ~20 million a month
GUIDANCE_ESTIMATE_VOLUME = 20_000_000
GUIDANCE_TRANSITIONS = 3.0


def _function(service: str, tables: dict[str, str] | None = None) -> Function:
    return Function(
        id=service,
        service=service,
        memory_mb=a.GUIDANCE_MEMORY_MB,
        architecture="x86_64",
        tracing="Active",
        app_log_level="INFO",
        system_log_level="INFO",
        tables=tables or {},
        log_group=f"{service}-logs",
    )


def _detail_type(name: str) -> dict[str, list[str]]:
    return {"detail-type": [name]}


def guidance_inventory() -> Inventory:
    inv = Inventory(name="The guidance's design")
    inv.tables = {
        "visa": Table("visa", on_demand=True, stream=True, pitr=False, key=None, ttl=False),
        "dedup": Table(
            "dedup", on_demand=True, stream=False, pitr=False, key=None, ttl=True, retention_days=1
        ),
        "metadata": Table(
            "metadata", on_demand=True, stream=False, pitr=False, key=None, ttl=False
        ),
    }
    for function in (
        _function("guidance-dedup", {"DEDUP_TABLE_NAME": "dedup"}),
        _function("guidance-enrichment", {"METADATA_TABLE_NAME": "metadata"}),
        _function("guidance-posting"),
    ):
        inv.functions[function.id] = function
        inv.log_groups[f"{function.id}-logs"] = LogGroup(f"{function.id}-logs", None, None)
    inv.pipes = [
        Pipe(
            "pipe",
            "visa",
            batch_size=1,
            window_seconds=0,
            parallelization=1,
            filters=[],
            enrichment="guidance-dedup",
            target=("bus", "bus"),
            key=None,
        )
    ]
    inv.bus_keys = {"bus": None}
    inv.state_machines = {
        "rules": StateMachine(
            "rules",
            type="STANDARD",
            tracing=False,
            log_level="OFF",
            key=None,
            transitions_per_execution=GUIDANCE_TRANSITIONS,
        )
    }
    inv.queues = {"buffer": Queue("buffer", key=None)}
    inv.sqs_sources = [SqsSource("buffer", "guidance-posting", batch_size=10, window_seconds=0)]
    inv.topics = {"notifications": None}
    inv.email_subscriptions = 1
    inv.rules = [
        Rule(
            "enrich",
            _detail_type("TransactionAuthorized"),
            None,
            [Target("function", "guidance-enrichment")],
        ),
        Rule("rules", _detail_type("TransactionEnriched"), None, [Target("statemachine", "rules")]),
        Rule("post", _detail_type("TransactionApproved"), None, [Target("queue", "buffer")]),
        Rule("notify", _detail_type("TransactionPosted"), None, [Target("topic", "notifications")]),
    ]
    inv.archives = [Archive("archive", None, None, None)]
    return inv


def guidance_activity(run: Activity) -> Activity:
    """The run's records through the guidance's four lifecycle events: every record
    authorized, the ones the run enriched enriched, the approved ones approved and posted."""

    def like(detail_type: str) -> list[BusEvent]:
        return [e for e in run.events if e.detail_type == detail_type]

    posted_detail = next(iter(like("TransactionPosted")), BusEvent("", "", {})).detail
    approved = like("TransactionApproved")
    events = [
        *(
            BusEvent("guidance.ingest", e.detail_type, e.detail)
            for e in like("TransactionAuthorized")
        ),
        *(
            BusEvent("guidance.enrichment", e.detail_type, e.detail)
            for e in like("TransactionEnriched")
        ),
        *(BusEvent("guidance.rules", e.detail_type, e.detail) for e in approved),
        *(BusEvent("guidance.posting", "TransactionPosted", posted_detail) for _ in approved),
    ]
    services = {
        "guidance-dedup": "ingest-dedup",
        "guidance-enrichment": "enrichment",
        "guidance-posting": "posting",
    }
    return Activity(
        records=run.records,
        events=events,
        final_states=run.final_states,
        completed_lifecycles=run.completed_lifecycles,
        log_bytes={g: run.log_bytes.get(ours, {}) for g, ours in services.items()},
        invocations={g: run.invocations.get(ours, 0) for g, ours in services.items()},
        record_bytes=1024,  # the guidance's table: 1 KB items
        table_bytes={"visa": 1024 * run.records},
        origin=run.origin,
    )
