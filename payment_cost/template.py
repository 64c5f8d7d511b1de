"""Reading the resources the model prices from a synthesized cloud assembly (``cdk.out``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from payment_cost.errors import CostInputError
from payment_cost.inventory import (
    Archive,
    Function,
    Inventory,
    LogGroup,
    Pipe,
    Queue,
    Rule,
    SamplingRule,
    SqsSource,
    StateMachine,
    Table,
    Target,
)

# Which environment variable holds the time to live of the table another one names.
TTL_SECONDS_VARIABLE = {"DEDUP_TABLE_NAME": "DEDUP_WINDOW_SECONDS"}
# Set in the handler's code, not the template: Powertools idempotency records expire after 19
# days (lambdas/payment_posting_functions/handlers/posting.py).
TTL_DAYS_IN_CODE = {"IDEMPOTENCY_TABLE_NAME": 19.0}
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def load_template(directory: Path) -> tuple[str, dict[str, Any]]:
    """The stack name and template of the one stack in a cloud assembly."""
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise CostInputError(
            f"no cloud assembly at {directory}: run `make synth` (or `make cost`, which "
            "synthesizes the stage it prices)"
        )
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as error:
        raise CostInputError(f"{manifest_file} is not JSON ({error}): synthesize again") from None
    stacks = {
        name: artifact["properties"]["templateFile"]
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    }
    if len(stacks) != 1:
        raise CostInputError(
            f"{directory} holds {len(stacks)} stacks ({', '.join(sorted(stacks)) or 'none'}); "
            "the model prices exactly one"
        )
    ((name, template_file),) = stacks.items()
    path = directory / template_file
    if not path.is_file():
        raise CostInputError(f"{path} is missing: synthesize again")
    template: dict[str, Any] = json.loads(path.read_text())
    return name, template


def ref_id(value: Any) -> str | None:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` names; None for anything else."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            return str(attribute[0])
    return None


def resolve_pattern(value: Any) -> Any:
    """An event pattern with ``Ref AWS::AccountId`` and ``AWS::Region`` as the stand-ins the
    activity's events carry; any other intrinsic function cannot be matched."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            pseudo = {"AWS::AccountId": "123456789012", "AWS::Region": "us-east-1"}
            if value["Ref"] in pseudo:
                return pseudo[value["Ref"]]
            raise CostInputError(f"an event pattern refers to {value['Ref']}: cannot match it")
        return {k: resolve_pattern(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_pattern(v) for v in value]
    return value


def _pattern(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    resolved: dict[str, Any] = resolve_pattern(value)
    return resolved


def _schedule(expression: str | None) -> float | None:
    if not expression:
        return None
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise CostInputError(f"schedule {expression!r}: the model reads rate(...) schedules only")
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * _UNIT_SECONDS[unit]


def inventory_from_template(name: str, template: dict[str, Any]) -> Inventory:
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    inv = Inventory(name=name)
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource.get("Type", ""), []).append(
            (logical_id, resource.get("Properties", {}) or {})
        )

    def of(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return by_type.get(kind, [])

    inv.keys = [logical_id for logical_id, _ in of("AWS::KMS::Key")]
    keys = set(inv.keys)

    def key_of(value: Any) -> str | None:
        found = ref_id(value)
        return found if found in keys else None

    for logical_id, p in of("AWS::Logs::LogGroup"):
        inv.log_groups[logical_id] = LogGroup(
            logical_id, p.get("RetentionInDays"), key_of(p.get("KmsKeyId"))
        )
    table_types = ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")
    for kind in table_types:
        for logical_id, p in of(kind):
            replicas = p.get("Replicas") or [{}]
            pitr_spec = p.get("PointInTimeRecoverySpecification") or replicas[0].get(
                "PointInTimeRecoverySpecification", {}
            )
            sse = replicas[0].get("SSESpecification") or p.get("SSESpecification") or {}
            inv.tables[logical_id] = Table(
                id=logical_id,
                on_demand=p.get("BillingMode") == "PAY_PER_REQUEST",
                stream=bool(p.get("StreamSpecification")),
                pitr=bool(pitr_spec.get("PointInTimeRecoveryEnabled")),
                key=key_of(sse.get("KMSMasterKeyId")),
                ttl=bool((p.get("TimeToLiveSpecification") or {}).get("Enabled")),
            )
    for logical_id, p in of("AWS::Lambda::Function"):
        env = (p.get("Environment") or {}).get("Variables") or {}
        logging = p.get("LoggingConfig") or {}
        json_logs = logging.get("LogFormat") == "JSON"
        inv.functions[logical_id] = Function(
            id=logical_id,
            service=str(env.get("POWERTOOLS_SERVICE_NAME") or logical_id),
            memory_mb=int(p.get("MemorySize", 128)),
            architecture=(p.get("Architectures") or ["x86_64"])[0],
            tracing=(p.get("TracingConfig") or {}).get("Mode", "PassThrough"),
            app_log_level=logging.get("ApplicationLogLevel", "INFO") if json_logs else "INFO",
            system_log_level=logging.get("SystemLogLevel", "INFO") if json_logs else "INFO",
            tables={
                var: table
                for var, value in env.items()
                if (table := ref_id(value)) is not None and table in inv.tables
            },
            log_group=ref_id(logging.get("LogGroup")),
            env_key=key_of(p.get("KmsKeyArn")),
        )
    for logical_id, p in of("AWS::SQS::Queue"):
        inv.queues[logical_id] = Queue(
            logical_id,
            key_of(p.get("KmsMasterKeyId")),
            int(p.get("KmsDataKeyReusePeriodSeconds", 300)),
        )
    for _, p in of("AWS::Lambda::EventSourceMapping"):
        source, function = ref_id(p.get("EventSourceArn")), ref_id(p.get("FunctionName"))
        if source in inv.queues and function in inv.functions:
            inv.sqs_sources.append(
                SqsSource(
                    source,
                    function,
                    int(p.get("BatchSize", 10)),
                    float(p.get("MaximumBatchingWindowInSeconds", 0)),
                )
            )
    for logical_id, p in of("AWS::StepFunctions::StateMachine"):
        encryption = p.get("EncryptionConfiguration") or {}
        substitutions = p.get("DefinitionSubstitutions") or {}
        inv.state_machines[logical_id] = StateMachine(
            id=logical_id,
            type=p.get("StateMachineType", "STANDARD"),
            tracing=bool((p.get("TracingConfiguration") or {}).get("Enabled")),
            log_level=(p.get("LoggingConfiguration") or {}).get("Level", "OFF"),
            key=key_of(encryption.get("KmsKeyId")),
            key_reuse_seconds=int(encryption.get("KmsDataKeyReusePeriodSeconds", 300)),
            tables=[t for v in substitutions.values() if (t := ref_id(v)) in inv.tables],
            publishes_source=str(substitutions.get("RulesSource", "payments.rules")),
        )
    for logical_id, p in of("AWS::Events::EventBus"):
        inv.bus_keys[logical_id] = key_of(p.get("KmsKeyIdentifier"))
    for logical_id, p in of("AWS::SNS::Topic"):
        inv.topics[logical_id] = key_of(p.get("KmsMasterKeyId"))
    inv.email_subscriptions = sum(
        1 for _, p in of("AWS::SNS::Subscription") if p.get("Protocol") in ("email", "email-json")
    )
    for logical_id, p in of("AWS::Events::Rule"):
        targets = []
        for target in p.get("Targets", []):
            target_id = ref_id(target.get("Arn")) or ""
            kind = (
                "function"
                if target_id in inv.functions
                else "queue"
                if target_id in inv.queues
                else "statemachine"
                if target_id in inv.state_machines
                else "topic"
                if target_id in inv.topics
                else "other"
            )
            targets.append(Target(kind, target_id))
        inv.rules.append(
            Rule(
                logical_id,
                _pattern(p.get("EventPattern")),
                _schedule(p.get("ScheduleExpression")),
                targets,
            )
        )
    for logical_id, p in of("AWS::Events::Archive"):
        retention = p.get("RetentionDays")
        inv.archives.append(
            Archive(
                logical_id,
                _pattern(p.get("EventPattern")),
                retention or None,
                key_of(p.get("KmsKeyIdentifier")),
            )
        )
    for logical_id, p in of("AWS::Pipes::Pipe"):
        source = ref_id(p.get("Source"))
        parameters = p.get("SourceParameters") or {}
        stream = parameters.get("DynamoDBStreamParameters") or {}
        target = ref_id(p.get("Target")) or ""
        inv.pipes.append(
            Pipe(
                id=logical_id,
                source_table=source or "",
                batch_size=int(stream.get("BatchSize", 10)),
                window_seconds=float(stream.get("MaximumBatchingWindowInSeconds", 0)),
                parallelization=int(stream.get("ParallelizationFactor", 1)),
                filters=[
                    json.loads(f["Pattern"])
                    for f in (parameters.get("FilterCriteria") or {}).get("Filters", [])
                ],
                enrichment=ref_id(p.get("Enrichment")),
                target=("statemachine" if target in inv.state_machines else "bus", target),
                key=key_of(p.get("KmsKeyIdentifier")),
            )
        )
    for _, p in of("AWS::XRay::SamplingRule"):
        rule = p.get("SamplingRule") or {}
        service = ref_id(rule.get("ServiceName")) or str(rule.get("ServiceName", "*"))
        inv.sampling_rules.append(
            SamplingRule(
                service, float(rule.get("FixedRate", 0.05)), int(rule.get("ReservoirSize", 1))
            )
        )
    for _, p in of("AWS::CloudWatch::Alarm"):
        metrics = p.get("Metrics")
        if metrics:
            stats = [m["MetricStat"] for m in metrics if "MetricStat" in m]
            count = len(stats)
            high = sum(1 for s in stats if int(s.get("Period", 60)) < 60)
        else:
            count, high = 1, int(int(p.get("Period", 60)) < 60)
        inv.alarm_metrics += count - high
        inv.alarm_high_resolution_metrics += high
    _table_retention(inv, resources)
    inv.dashboards = len(of("AWS::CloudWatch::Dashboard"))
    inv.interface_endpoint_azs = sum(
        len(p.get("SubnetIds") or [])
        for _, p in of("AWS::EC2::VPCEndpoint")
        if p.get("VpcEndpointType") == "Interface"
    )
    inv.nat_gateways = len(of("AWS::EC2::NatGateway"))
    inv.secrets = len(of("AWS::SecretsManager::Secret"))
    _mark_ledger(inv)
    return inv


def _table_retention(inv: Inventory, resources: dict[str, dict[str, Any]]) -> None:
    """How long a table with a time to live keeps an item: the setting the code that writes
    it is given (a window, the stage's retention, the pending-review days)."""
    for resource in resources.values():
        properties = resource.get("Properties", {}) or {}
        if resource.get("Type") == "AWS::Lambda::Function":
            env = (properties.get("Environment") or {}).get("Variables") or {}
            for variable, value in env.items():
                table = inv.tables.get(ref_id(value) or "")
                if table is None or not table.ttl:
                    continue
                if variable in TTL_DAYS_IN_CODE:
                    table.retention_days = TTL_DAYS_IN_CODE[variable]
                    continue
                seconds = env.get(TTL_SECONDS_VARIABLE.get(variable, "RETENTION_SECONDS"))
                if seconds is not None and table.retention_days is None:
                    table.retention_days = int(seconds) / 86400
        if resource.get("Type") == "AWS::StepFunctions::StateMachine":
            substitutions = properties.get("DefinitionSubstitutions") or {}
            days = substitutions.get("PendingReviewDays")
            for value in substitutions.values():
                table = inv.tables.get(ref_id(value) or "")
                if table is not None and table.ttl and days is not None:
                    table.retention_days = float(days)


def _mark_ledger(inv: Inventory) -> None:
    """The built-in ledger: the tables the functions name ``LEDGER_*``, the functions that use
    only those (the expiry sweeper), their schedules and log groups, and keys only they use."""
    ledger_tables = {
        t
        for f in inv.functions.values()
        for var, t in f.tables.items()
        if var.startswith("LEDGER_")
    }
    ledger = set(ledger_tables)
    for function in inv.functions.values():
        if (
            function.tables
            and set(function.tables.values()) <= ledger_tables
            and not any(s.function == function.id for s in inv.sqs_sources)
        ):
            ledger.add(function.id)
            if function.log_group:
                ledger.add(function.log_group)
    for rule in inv.rules:
        if rule.targets and all(t.id in ledger for t in rule.targets):
            ledger.add(rule.id)
    users: dict[str, set[str]] = {}
    for table in inv.tables.values():
        if table.key:
            users.setdefault(table.key, set()).add(table.id)
    for queue in inv.queues.values():
        if queue.key:
            users.setdefault(queue.key, set()).add(queue.id)
    for group in inv.log_groups.values():
        if group.key:
            users.setdefault(group.key, set()).add(group.id)
    for key, used_by in users.items():
        if used_by <= ledger:
            ledger.add(key)
    inv.ledger_ids = ledger
