"""Issue 14 item 3, modelled and not built: the deployed inventory changed to the leaner
topology, and the run's activity as that topology would put it on the bus.

- enrichment inside the pipe: one function screens and enriches each batch (no
  TransactionAuthorized or TransactionEnriched on the bus, no rule hop between them);
- one workflow execution per pipe batch: the pipe's target is the rules workflow, with a
  batching window of at least a second and one batch at a time per shard so batches form;
- only outcomes on the bus: the decisions, screening outcomes and posting results; the side
  events (foreign transaction, watched merchant category) ride in the outcome's detail.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from payment_cost.activity import Activity, BusEvent
from payment_cost.inventory import Archive, Function, Inventory
from payment_cost.pattern import matches

# What a subscriber, an operator or the design gives up for it.
GIVES_UP = (
    "TransactionAuthorized and TransactionEnriched leave the bus: no subscriber (fraud, "
    "analytics, a new processor) can attach to those steps of the lifecycle any more",
    "side events (foreign transaction, watched merchant category) are fields of the outcome, "
    "not events a rule can route",
    "replay: the archive holds outcomes only; deciding a window again means reading the "
    "transactions table again (point-in-time export), a new runbook, not an archive replay",
    "failure isolation: one execution decides a batch, so one bad record fails its batch "
    "unless every item is caught on its own (Map with a per-item Catch)",
    "latency: the pipe's batching window (at least 1 s) is added before the rules",
    "screening and enrichment share one function: one deployment, one failure domain, one "
    "memory size",
    "tracing: a trace covers a batch, not a transaction",
)
DROPPED_FROM_BUS = (
    "TransactionAuthorized",
    "TransactionEnriched",
    "ForeignTransactionFound",
    "MerchantCategoryWarning",
)
MIN_WINDOW_SECONDS = 1.0


def leaner_inventory(deployed: Inventory, run: Activity) -> Inventory:
    inv = copy.deepcopy(deployed)
    inv.name = f"{deployed.name}, leaner topology (modelled)"
    if not inv.pipes or not inv.state_machines:
        return inv
    pipe = inv.pipes[0]
    workflow = next(iter(inv.state_machines))
    authorized = next((e for e in run.events if e.detail_type == "TransactionAuthorized"), None)
    enriched = next((e for e in run.events if e.detail_type == "TransactionEnriched"), None)

    def fed_by(event: BusEvent | None, kind: str) -> list[str]:
        return [
            r.id
            for r in inv.rules
            if event is not None
            and r.pattern is not None
            and matches(r.pattern, event.envelope)
            and any(t.kind == kind for t in r.targets)
        ]

    enrich_rules = fed_by(authorized, "function")
    enrich_functions = {t.id for r in inv.rules if r.id in enrich_rules for t in r.targets}
    removed = set(enrich_rules) | set(fed_by(enriched, "statemachine"))
    inv.rules = [r for r in inv.rules if r.id not in removed]
    screen = inv.functions[pipe.enrichment] if pipe.enrichment else None
    tables: dict[str, str] = {}
    for function_id in {pipe.enrichment, *enrich_functions} - {None}:
        tables.update(inv.functions[str(function_id)].tables)
    combined = Function(
        id="ScreenAndEnrich",
        service="screen-and-enrich",
        memory_mb=screen.memory_mb if screen else 256,
        architecture=screen.architecture if screen else "arm64",
        tracing=screen.tracing if screen else "PassThrough",
        app_log_level=screen.app_log_level if screen else "INFO",
        system_log_level=screen.system_log_level if screen else "WARN",
        tables=tables,
        log_group=screen.log_group if screen else None,
    )
    for function_id in {pipe.enrichment, *enrich_functions} - {None}:
        inv.functions.pop(str(function_id), None)
    inv.functions[combined.id] = combined
    inv.pipes[0] = replace(
        pipe,
        enrichment=combined.id,
        target=("statemachine", workflow),
        window_seconds=max(pipe.window_seconds, MIN_WINDOW_SECONDS),
        parallelization=1,
    )
    inv.archives = [Archive(x.id, None, x.retention_days, x.key) for x in inv.archives]
    return inv


def leaner_activity(run: Activity) -> Activity:
    events = [e for e in run.events if e.detail_type not in DROPPED_FROM_BUS]
    screening = ("ingest-dedup", "enrichment")
    log_bytes: dict[str, int] = {}
    for service in screening:
        for level, n in run.log_bytes.get(service, {}).items():
            log_bytes[level] = log_bytes.get(level, 0) + n
    return replace(
        run,
        events=events,
        log_bytes={**run.log_bytes, "screen-and-enrich": log_bytes},
        invocations={
            **run.invocations,
            "screen-and-enrich": run.invocations.get("ingest-dedup", 0),
        },
    )
