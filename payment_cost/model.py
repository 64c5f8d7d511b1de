"""The cost of one month at a volume: line items from an inventory, an activity and prices.

Every line item is a variable cost per record written to the transactions table and a fixed
monthly cost; per million records = variable x 1,000,000 + fixed / volume x 1,000,000.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from payment_cost import assumptions as a
from payment_cost.activity import Activity
from payment_cost.inventory import Function, Inventory, StateMachine
from payment_cost.pattern import matches
from payment_cost.prices import PriceTable

CHUNK_BYTES = 64 * 1024
MILLION = 1_000_000


@dataclass
class LineItem:
    block: str  # pipeline | ledger
    service: str
    item: str
    per_record: float  # dollars per record written, varying with volume
    monthly_fixed: float  # dollars a month whatever the volume
    quantity: str  # what was counted, for a reader to check
    prices: list[str] = field(default_factory=list)
    resource: str = ""  # the logical id the cost is of

    def per_million(self, volume: int) -> float:
        return self.per_record * MILLION + self.monthly_fixed / volume * MILLION


@dataclass
class Costing:
    inventory: Inventory
    volume: int
    items: list[LineItem]
    postings_per_record: float
    records_per_lifecycle: float | None
    notes: list[str]

    def source_table(self) -> float:
        """Of the pipeline: what the transactions table costs (the source's write, its
        storage and backups, the reads of its stream), which the source system may count as
        its own."""
        tables = {p.source_table for p in self.inventory.pipes}
        return sum(i.per_million(self.volume) for i in self.items if i.resource in tables)

    def total(self, block: str | None = None) -> float:
        return sum(i.per_million(self.volume) for i in self.items if block in (None, i.block))

    def monthly(self, block: str | None = None) -> float:
        return self.total(block) * self.volume / MILLION


def batch_size(
    maximum: int, window_seconds: float, arrivals_per_second: float, pollers: int
) -> float:
    """Records a batch carries: without a window a poller takes what is there (at these rates,
    one); with one it gathers the window's arrivals, shared among the concurrent pollers."""
    if window_seconds <= 0:
        return 1.0
    return max(1.0, min(float(maximum), arrivals_per_second * window_seconds / pollers))


def sampled_per_second(rate: float, reservoir: float, fixed_rate: float) -> float:
    """Requests an X-Ray rule samples each second: the reservoir, then the rate of the rest."""
    return min(rate, reservoir) + fixed_rate * max(0.0, rate - reservoir)


def chunks(size_bytes: float) -> int:
    return max(1, math.ceil(size_bytes / CHUNK_BYTES))


class _Builder:
    def __init__(self, inv: Inventory, act: Activity, prices: PriceTable, volume: int) -> None:
        self.inv, self.act, self.p, self.volume = inv, act, prices, volume
        self.rate = volume / a.SECONDS_PER_MONTH  # records per second
        self.items: list[LineItem] = []
        self.notes: list[str] = []
        self.invocations: dict[str, float] = defaultdict(float)  # function -> per record
        self.records_handled: dict[str, float] = defaultdict(float)  # function -> per record
        self.scheduled: dict[str, float] = defaultdict(float)  # function -> per month
        self.concurrency: dict[str, float] = {}
        self.queue_in: dict[str, float] = defaultdict(float)
        self.executions: dict[str, float] = defaultdict(float)
        self.sns: dict[str, float] = defaultdict(float)
        self.kms: dict[str, tuple[float, list[str]]] = {}
        self.written_tables: set[str] = set()
        self.kms_sources: set[str] = set()

    def add(
        self,
        resource: str,
        service: str,
        item: str,
        per_record: float,
        fixed: float,
        quantity: str,
        *prices: str,
    ) -> None:
        self.items.append(
            LineItem(
                self.inv.block_of(resource),
                service,
                item,
                per_record,
                fixed,
                quantity,
                list(prices),
                resource,
            )
        )

    def kms_requests(self, key: str | None, per_month: float, why: str) -> None:
        if key is None or per_month <= 0:
            return
        total, whys = self.kms.get(key, (0.0, []))
        self.kms[key] = (total + per_month, [*whys, why])

    # -- what each record causes ------------------------------------------------------

    def per_record_of(self, detail_types: tuple[str, ...]) -> float:
        return self.act.per_record(sum(1 for e in self.act.events if e.detail_type in detail_types))

    def flows(self) -> None:
        for pipe in self.inv.pipes:
            size = batch_size(
                pipe.batch_size,
                pipe.window_seconds,
                self.rate,
                a.STREAM_SHARDS * pipe.parallelization,
            )
            per_record = 1.0 / size
            requests = per_record * chunks(size * self.act.record_bytes)
            self.add(
                pipe.id,
                "EventBridge",
                "pipe requests",
                requests * self.p["eventbridge.pipes.request"],
                0.0,
                f"batches of {size:g} (max {pipe.batch_size}, window {pipe.window_seconds:g} s)",
                "eventbridge.pipes.request",
            )
            polls = a.STREAM_SHARDS * a.STREAM_POLLS_PER_SECOND * a.SECONDS_PER_MONTH
            self.add(
                pipe.source_table,
                "DynamoDB",
                "stream reads by the pipe",
                0.0,
                polls * self.p["dynamodb.streams.read_request"],
                f"{a.STREAM_POLLS_PER_SECOND} GetRecords/s on each of {a.STREAM_SHARDS} shards",
                "dynamodb.streams.read_request",
            )
            self.kms_requests(
                pipe.key,
                a.SECONDS_PER_MONTH / a.DYNAMODB_KEY_CACHE_SECONDS,
                f"pipe: {a.PIPES_KMS_SOURCE}",
            )
            if pipe.enrichment:
                self.invocations[pipe.enrichment] += per_record
                self.records_handled[pipe.enrichment] += 1.0
            if pipe.target[0] == "statemachine":
                self.executions[pipe.target[1]] += per_record
        for rule in self.inv.rules:
            if rule.schedule_seconds:
                for target in rule.targets:
                    if target.kind == "function":
                        self.scheduled[target.id] += a.SECONDS_PER_MONTH / rule.schedule_seconds
                continue
            if rule.pattern is None:
                continue
            matched = self.act.per_record(
                sum(1 for e in self.act.events if matches(rule.pattern, e.envelope))
            )
            for target in rule.targets:
                if target.kind == "function":
                    self.invocations[target.id] += matched
                    self.records_handled[target.id] += matched
                elif target.kind == "queue":
                    self.queue_in[target.id] += matched
                elif target.kind == "statemachine":
                    self.executions[target.id] += matched
                elif target.kind == "topic":
                    self.sns[target.id] += matched
        for source in self.inv.sqs_sources:
            messages = self.queue_in.get(source.queue, 0.0)
            size = batch_size(
                source.batch_size, source.window_seconds, messages * self.rate, a.SQS_POLLERS
            )
            self.invocations[source.function] += messages / size
            self.records_handled[source.function] += messages
            queue = self.inv.queues[source.queue]
            requests = messages * (1 + 2 / size)  # send; receive and delete per batch
            self.add(
                queue.id,
                "SQS",
                f"{_short(queue.id)} requests",
                requests * self.p["sqs.standard.request"],
                0.0,
                f"send 1 + receive and delete per batch of {size:g}",
                "sqs.standard.request",
            )
            empty = a.SQS_POLLERS * a.SECONDS_PER_MONTH / a.SQS_LONG_POLL_SECONDS
            self.add(
                queue.id,
                "SQS",
                f"{_short(queue.id)} polling",
                0.0,
                empty * self.p["sqs.standard.request"],
                f"{a.SQS_POLLERS} pollers' long polls of {a.SQS_LONG_POLL_SECONDS} s",
                "sqs.standard.request",
            )
            if queue.key:
                # SQS: R = B / D * (2P + C): one producer (EventBridge), one consumer role.
                self.kms_requests(
                    queue.key,
                    a.SECONDS_PER_MONTH / queue.key_reuse_seconds * 3,
                    f"queue {_short(queue.id)}: {a.SQS_KMS_SOURCE}",
                )

    # -- services ---------------------------------------------------------------------

    def functions(self) -> None:
        for function in self.inv.functions.values():
            per_record = self.invocations.get(function.id, 0.0)
            monthly = self.scheduled.get(function.id, 0.0)
            if per_record == 0 and monthly == 0:
                self.notes.append(
                    f"function {_short(function.id)} is not invoked by the pipeline: not priced"
                )
                continue
            profile = a.PROFILES.get(function.service, a.DEFAULT_PROFILE)
            if function.service not in a.PROFILES:
                self.notes.append(
                    f"{function.service}: no duration profile in payment_cost/assumptions.py: "
                    f"{a.DEFAULT_PROFILE.base_ms:g} ms an invocation and no table calls assumed"
                )
            handled = self.records_handled.get(function.id, 0.0)
            batch = handled / per_record if per_record else 1.0
            duration_s = (profile.base_ms + profile.per_record_ms * batch) / 1000
            gb = function.memory_mb / 1024
            gb_price_key = f"lambda.gb_second.{function.architecture}"
            invocations_s = per_record * self.rate + monthly / a.SECONDS_PER_MONTH
            self.concurrency[function.id] = max(1.0, invocations_s * duration_s)
            name = function.service
            self.add(
                function.id,
                "Lambda",
                f"{name} requests",
                per_record * self.p["lambda.request"],
                monthly * self.p["lambda.request"],
                f"{per_record:.3g} invocations per record"
                + (f", {monthly:,.0f} a month on schedule" if monthly else ""),
                "lambda.request",
            )
            gb_s = gb * duration_s
            self.add(
                function.id,
                "Lambda",
                f"{name} duration",
                per_record * gb_s * self.p[gb_price_key],
                monthly * gb_s * self.p[gb_price_key],
                f"{function.memory_mb} MB {function.architecture} x {duration_s * 1000:.0f} ms "
                f"({batch:g} records an invocation)",
                gb_price_key,
            )
            init = a.COLD_START_SHARE * gb * a.INIT_SECONDS * self.p[gb_price_key]
            self.add(
                function.id,
                "Lambda",
                f"{name} cold starts",
                per_record * init,
                monthly * init,
                f"{a.COLD_START_SHARE:.1%} of invocations x {a.INIT_SECONDS:g} s INIT",
                gb_price_key,
            )
            self._function_logs(function, per_record, monthly)
            self._function_tables(function, profile, per_record, monthly, handled)
            if profile.sns_publishes_per_invocation:
                self.sns["*"] += per_record * profile.sns_publishes_per_invocation
            self._function_tracing(function, invocations_s)
            cold_per_month = (per_record * self.volume + monthly) * a.COLD_START_SHARE
            self.kms_requests(
                function.env_key, cold_per_month, f"{name} environment: {a.LAMBDA_KMS_SOURCE}"
            )

    def _function_logs(self, function: Function, per_record: float, monthly: float) -> None:
        measured = self.act.log_bytes_per_invocation(function.service, function.app_log_level)
        if measured is None:
            self.notes.append(
                f"{function.service}: the run has no log lines of it: its logs are not priced"
            )
            measured = 0.0
        platform = a.PLATFORM_LOG_BYTES if function.system_log_level in ("DEBUG", "INFO") else 0
        per_invocation_gb = (measured + platform) / 1e9
        self.add(
            function.log_group or function.id,
            "CloudWatch",
            f"{function.service} logs ingested",
            per_record * per_invocation_gb * self.p["logs.ingest_gb"],
            monthly * per_invocation_gb * self.p["logs.ingest_gb"],
            f"{measured:.0f} B app log at {function.app_log_level} (measured in the run) + "
            f"{platform} B platform per invocation",
            "logs.ingest_gb",
        )
        group = self.inv.log_groups.get(function.log_group or "")
        retention_days = group.retention_days if group and group.retention_days else None
        retention_months = (retention_days or a.NO_EXPIRY_DAYS) / 30.42
        stored = per_invocation_gb * a.LOG_COMPRESSION * retention_months
        self.add(
            function.log_group or function.id,
            "CloudWatch",
            f"{function.service} logs stored",
            per_record * stored * self.p["logs.storage_gb_month"],
            monthly * stored * self.p["logs.storage_gb_month"],
            f"{retention_days or 'never expire: 365'} days kept, compressed to "
            f"{a.LOG_COMPRESSION:.0%}",
            "logs.storage_gb_month",
        )
        if group and group.key:
            streams = self.concurrency.get(function.id, 1.0)
            self.kms_requests(
                group.key,
                streams * a.SECONDS_PER_MONTH / a.LOGS_KEY_CACHE_SECONDS,
                f"{function.service} log streams: {a.LOGS_KMS_SOURCE}",
            )

    def _function_tables(
        self,
        function: Function,
        profile: a.Profile,
        per_record: float,
        monthly: float,
        handled: float,
    ) -> None:
        for variable, calls in profile.tables.items():
            table_id = function.tables.get(variable)
            if table_id is None:
                continue
            for call in calls:
                share = self.per_record_of(call.when) if call.when else handled
                fixed = monthly if not handled else 0.0
                self.table_units(
                    table_id, f"{function.service}", call.writes, call.reads, share, fixed
                )
            table = self.inv.tables[table_id]
            callers = self.concurrency.get(function.id, 1.0)
            self.kms_requests(
                table.key,
                callers * a.SECONDS_PER_MONTH / a.DYNAMODB_KEY_CACHE_SECONDS,
                f"{function.service} on {_short(table_id)}: {a.DYNAMODB_KMS_SOURCE}",
            )

    def table_units(
        self,
        table_id: str,
        who: str,
        writes: float,
        reads: float,
        per_record: float,
        monthly: float,
    ) -> None:
        name = _short(table_id)
        if writes and per_record:
            self.written_tables.add(table_id)
        if writes:
            self.add(
                table_id,
                "DynamoDB",
                f"{name} writes ({who})",
                per_record * writes * self.p["dynamodb.ondemand.write_unit"],
                monthly * writes * self.p["dynamodb.ondemand.write_unit"],
                f"{writes:g} write units x {per_record:.3g} per record",
                "dynamodb.ondemand.write_unit",
            )
        if reads:
            self.add(
                table_id,
                "DynamoDB",
                f"{name} reads ({who})",
                per_record * reads * self.p["dynamodb.ondemand.read_unit"],
                monthly * reads * self.p["dynamodb.ondemand.read_unit"],
                f"{reads:g} read units x {per_record:.3g} per record",
                "dynamodb.ondemand.read_unit",
            )

    def _function_tracing(self, function: Function, invocations_s: float) -> None:
        if function.tracing != "Active":
            return
        traces = sampled_per_second(invocations_s, a.XRAY_DEFAULT_RESERVOIR, a.XRAY_DEFAULT_RATE)
        per_month = traces * a.SECONDS_PER_MONTH
        self.add(
            function.id,
            "X-Ray",
            f"{function.service} traces (Active, default rule)",
            per_month / self.volume * self.p["xray.trace_recorded"],
            0.0,
            f"{traces:.2f} of {invocations_s:.2f} invocations/s sampled ({a.XRAY_SOURCE})",
            "xray.trace_recorded",
        )

    def state_machines(self) -> None:
        for machine in self.inv.state_machines.values():
            per_record = self.executions.get(machine.id, 0.0)
            if per_record == 0:
                continue
            self._workflow(machine, per_record)

    def _workflow(self, machine: StateMachine, per_record: float) -> None:
        published = self.act.per_record(
            sum(1 for e in self.act.events if e.source == machine.publishes_source)
        )
        held = self.per_record_of(("TransactionHeld",))
        decided = self.per_record_of(("ReviewDecided",))
        rejected = self.per_record_of(("TransactionRejected",))
        tasks = (published + held + 2 * decided + rejected) / per_record
        if machine.type == "EXPRESS":
            duration_ms = a.WORKFLOW_BASE_MS + a.WORKFLOW_TASK_MS * tasks
            billed_s = math.ceil(duration_ms / 100) / 10
            gb_s = a.EXPRESS_BILLED_MB / 1024 * billed_s
            self.add(
                machine.id,
                "Step Functions",
                "workflow executions (Express)",
                per_record * self.p["stepfunctions.express.request"],
                0.0,
                f"{per_record:.3g} executions per record",
                "stepfunctions.express.request",
            )
            self.add(
                machine.id,
                "Step Functions",
                "workflow duration (Express)",
                per_record * gb_s * self.p["stepfunctions.express.gb_second"],
                0.0,
                f"{tasks:.2f} tasks x {a.WORKFLOW_TASK_MS} ms + {a.WORKFLOW_BASE_MS} ms, billed "
                f"{billed_s:g} s at {a.EXPRESS_BILLED_MB} MB",
                "stepfunctions.express.gb_second",
            )
        else:
            self.add(
                machine.id,
                "Step Functions",
                "workflow transitions (Standard)",
                per_record
                * machine.transitions_per_execution
                * self.p["stepfunctions.standard.transition"],
                0.0,
                f"{machine.transitions_per_execution:g} transitions per execution",
                "stepfunctions.standard.transition",
            )
        if machine.tracing:
            rule = next(
                (r for r in self.inv.sampling_rules if r.service in (machine.id, "*")), None
            )
            reservoir, fixed_rate = (
                (rule.reservoir, rule.fixed_rate)
                if rule
                else (a.XRAY_DEFAULT_RESERVOIR, a.XRAY_DEFAULT_RATE)
            )
            traces = sampled_per_second(per_record * self.rate, reservoir, fixed_rate)
            self.add(
                machine.id,
                "X-Ray",
                "workflow traces",
                traces * a.SECONDS_PER_MONTH / self.volume * self.p["xray.trace_recorded"],
                0.0,
                f"{'sampling rule' if rule else 'default rule'}: reservoir {reservoir}/s + "
                f"{fixed_rate:.0%} (functions downstream pass the trace through)",
                "xray.trace_recorded",
            )
        pending = next(iter(machine.tables), None)
        if pending:
            self.table_units(
                pending,
                "workflow",
                1,
                0,
                held * a.HOLD_WRITE_UNITS + decided * a.REVIEW_WRITE_UNITS,
                0,
            )
        if rejected:
            self.sns["*"] += rejected
        if machine.key:
            self.kms_requests(
                machine.key,
                a.SECONDS_PER_MONTH / machine.key_reuse_seconds,
                f"workflow: {a.STEPFUNCTIONS_KMS_SOURCE}",
            )

    def eventbridge(self) -> None:
        per_record = self.act.per_record(sum(chunks(e.size_bytes) for e in self.act.events))
        by_type = ", ".join(
            f"{k} {self.act.per_record(n):.2f}" for k, n in self.act.events_by_type().items()
        )
        bus = next(iter(self.inv.bus_keys), "bus")
        self.add(
            bus,
            "EventBridge",
            "events put on the bus",
            per_record * self.p["eventbridge.custom_event"],
            0.0,
            f"{per_record:.2f} events per record ({by_type})",
            "eventbridge.custom_event",
        )
        for key in self.inv.bus_keys.values():
            self.kms_requests(
                key,
                a.EVENTBRIDGE_KMS_CALLS_PER_WINDOW
                * a.SECONDS_PER_MONTH
                / a.EVENTBRIDGE_KMS_WINDOW_SECONDS,
                f"bus: {a.EVENTBRIDGE_KMS_SOURCE}",
            )
        for archive in self.inv.archives:
            archived = [
                e
                for e in self.act.events
                if archive.pattern is None or matches(archive.pattern, e.envelope)
            ]
            gb = self.act.per_record(sum(e.size_bytes for e in archived)) / 1e9
            months = (archive.retention_days or a.NO_EXPIRY_DAYS) / 30.42
            self.add(
                archive.id,
                "EventBridge",
                "archive: events archived",
                gb * self.p["eventbridge.archive.gb_processed"],
                0.0,
                f"{self.act.per_record(len(archived)):.2f} events per record",
                "eventbridge.archive.gb_processed",
            )
            self.add(
                archive.id,
                "EventBridge",
                "archive: storage",
                gb * months * self.p["eventbridge.archive.gb_month"],
                0.0,
                f"kept {archive.retention_days or 'for ever: a year priced'} days",
                "eventbridge.archive.gb_month",
            )
            self.kms_requests(
                archive.key,
                a.EVENTBRIDGE_KMS_CALLS_PER_WINDOW
                * a.SECONDS_PER_MONTH
                / a.EVENTBRIDGE_KMS_WINDOW_SECONDS,
                f"archive: {a.EVENTBRIDGE_KMS_SOURCE}",
            )

    def source_table(self) -> None:
        for pipe in self.inv.pipes:
            units = math.ceil(self.act.record_bytes / 1024)
            self.table_units(pipe.source_table, "the source's write", units, 0, 1.0, 0)

    def storage(self) -> None:
        """What the items a month's records leave in each table cost to keep: the bytes the
        run left per record written, for the table's time to live, or a year for a table
        without one (the ledger keeps every entry: its storage grows by this each month)."""
        for table_id, table in self.inv.tables.items():
            left = self.act.table_bytes.get(table_id)
            if left is None or table_id not in self.written_tables:
                continue
            months = (
                (table.retention_days / 30.42)
                if table.ttl and table.retention_days
                else a.NO_EXPIRY_DAYS / 30.42
            )
            if table.ttl and table.retention_days is None:
                months = 1.0
            gb_per_record = left / self.act.records / 1e9 * months
            kept = f"{left / self.act.records:.0f} B per record kept {months * 30.42:.0f} days"
            self.add(
                table_id,
                "DynamoDB",
                f"{_short(table_id)} storage",
                gb_per_record * self.p["dynamodb.storage.gb_month"],
                0.0,
                kept,
                "dynamodb.storage.gb_month",
            )
            if table.pitr:
                self.add(
                    table_id,
                    "DynamoDB",
                    f"{_short(table_id)} point-in-time recovery",
                    gb_per_record * self.p["dynamodb.pitr.gb_month"],
                    0.0,
                    kept,
                    "dynamodb.pitr.gb_month",
                )

    def notifications(self) -> None:
        publishes = sum(self.sns.values())
        if publishes:
            topic = next(iter(self.inv.topics), "topic")
            self.add(
                topic,
                "SNS",
                "notifications published",
                publishes * self.p["sns.publish"],
                0.0,
                f"{publishes:.3g} per record (rejections, duplicates, quarantine)",
                "sns.publish",
            )
            for key in {k for k in self.inv.topics.values() if k}:
                self.kms_requests(key, a.SECONDS_PER_MONTH / 300 * 3, f"topics: {a.SNS_KMS_SOURCE}")
        if self.inv.email_subscriptions:
            self.add(
                "topic",
                "SNS",
                "email deliveries",
                publishes * self.inv.email_subscriptions * self.p["sns.email_delivery"],
                0.0,
                f"{self.inv.email_subscriptions} subscriptions",
                "sns.email_delivery",
            )

    def fixed(self) -> None:
        for key in self.inv.keys:
            requests, whys = self.kms.get(key, (0.0, []))
            self.add(
                key,
                "KMS",
                f"key {_short(key)}",
                0.0,
                self.p["kms.key_month"],
                "1 key",
                "kms.key_month",
            )
            if requests:
                self.add(
                    key,
                    "KMS",
                    f"key {_short(key)} requests",
                    0.0,
                    requests * self.p["kms.request"],
                    f"{requests:,.0f} a month: " + "; ".join(w.split(":")[0] for w in whys),
                    "kms.request",
                )
                self.kms_sources.update(w.split(": ", 1)[1] for w in whys if ": " in w)
        inv = self.inv
        if inv.alarm_metrics or inv.alarm_high_resolution_metrics:
            self.add(
                "alarms",
                "CloudWatch",
                "alarms",
                0.0,
                inv.alarm_metrics * self.p["cloudwatch.alarm_metric_month"]
                + inv.alarm_high_resolution_metrics
                * self.p["cloudwatch.alarm_high_resolution_metric_month"],
                f"{inv.alarm_metrics} standard + "
                f"{inv.alarm_high_resolution_metrics} high-resolution metrics",
                "cloudwatch.alarm_metric_month",
            )
        if inv.dashboards:
            self.add(
                "dashboards",
                "CloudWatch",
                "dashboards",
                0.0,
                inv.dashboards * self.p["cloudwatch.dashboard_month"],
                f"{inv.dashboards} dashboard{'' if inv.dashboards == 1 else 's'}",
                "cloudwatch.dashboard_month",
            )
        self.custom_metrics()
        hours = a.SECONDS_PER_MONTH / 3600
        if inv.interface_endpoint_azs:
            self.add(
                "network",
                "VPC",
                "interface endpoints",
                0.0,
                inv.interface_endpoint_azs * hours * self.p["vpc.interface_endpoint_az_hour"],
                f"{inv.interface_endpoint_azs} endpoint-AZs",
                "vpc.interface_endpoint_az_hour",
            )
        if inv.nat_gateways:
            self.add(
                "network",
                "VPC",
                "NAT gateways",
                0.0,
                inv.nat_gateways * hours * self.p["vpc.nat_gateway_hour"],
                f"{inv.nat_gateways} gateways",
                "vpc.nat_gateway_hour",
            )
        if inv.secrets:
            self.add(
                "secrets",
                "Secrets Manager",
                "secrets",
                0.0,
                inv.secrets * self.p["secretsmanager.secret_month"],
                f"{inv.secrets} secrets",
                "secretsmanager.secret_month",
            )

    def custom_metrics(self) -> None:
        """Metrics the functions publish in embedded metric format lines. Those lines carry no
        level, so Lambda files them as INFO: a function whose application log level is above
        INFO drops them, and with them the metrics (and any alarm on them)."""
        declared = self.act.custom_metrics
        emitting = [f for f in self.inv.functions.values() if self.invocations.get(f.id)]
        keeping = [f for f in emitting if f.app_log_level in ("TRACE", "DEBUG", "INFO")]
        kept = declared if keeping else set()
        if declared and len(keeping) < len(emitting):
            dropped = sorted(f.service for f in emitting if f not in keeping)
            names = ", ".join(sorted({name for _, name, _ in declared}))
            self.notes.append(
                f"{', '.join(dropped)} log above INFO: their metric lines (no level, so INFO to "
                f"Lambda) are dropped, and with them what they publish of {names}, and any "
                "alarm on those metrics"
            )
        if kept:
            self.add(
                "metrics",
                "CloudWatch",
                "custom metrics (embedded metric format)",
                0.0,
                len(kept) * self.p["cloudwatch.custom_metric_month"],
                f"{len(kept)} metrics seen in the run",
                "cloudwatch.custom_metric_month",
            )

    def run(self) -> Costing:
        self.flows()
        self.source_table()
        self.functions()
        self.state_machines()
        self.eventbridge()
        self.notifications()
        self.storage()
        self.fixed()
        postings = sum(self.records_handled.get(s.function, 0.0) for s in self.inv.sqs_sources)
        lifecycles = self.act.completed_lifecycles
        return Costing(
            inventory=self.inv,
            volume=self.volume,
            items=self.items,
            postings_per_record=postings,
            records_per_lifecycle=self.act.records / lifecycles if lifecycles else None,
            notes=self.notes
            + [f"KMS requests modelled from {s}" for s in sorted(self.kms_sources)],
        )


def cost(inventory: Inventory, activity: Activity, prices: PriceTable, volume: int) -> Costing:
    return _Builder(inventory, activity, prices, volume).run()


def _short(logical_id: str) -> str:
    """A logical id without CDK's hash suffix."""
    return (
        logical_id[:-8]
        if len(logical_id) > 8
        and logical_id[-8:].isalnum()
        and any(c.isdigit() for c in logical_id[-8:])
        else logical_id
    )
