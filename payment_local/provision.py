"""Creating a template's resources on moto, in dependency order, and wiring up the glue.

Each supported resource type has a small handler that creates the resource on moto (or, for
what moto does not run, the local stand-in) and records what ``Ref`` and ``Fn::GetAtt`` of it
return, so later resources resolve against real local names. Types that need nothing locally
are listed with the reason; any other type is reported by name before the run starts.
"""

from __future__ import annotations

import graphlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from moto.events.models import EventPattern

from payment_local.assembly import StackAssembly
from payment_local.clients import AwsClients
from payment_local.function_logs import application_log_level
from payment_local.functions import FunctionError, LocalFunction
from payment_local.intrinsics import Resolver, references
from payment_local.moto_internals import InvocationError, register_function
from payment_local.network import FunctionNetwork, SecurityGroups
from payment_local.pipes import StreamPipe
from payment_local.rules import (
    AsyncLambdaInvocation,
    Delivery,
    SqsDelivery,
    StateMachineExecution,
    TapTarget,
    TargetDeadLetter,
    tap_registration,
)
from payment_local.schedules import ScheduledRule, ScheduleError, period_seconds
from payment_local.sqs_source import SqsEventSource

# Policies are not created in moto: the local access check reads them from the template.
_READ_BY_ACCESS_CHECK = "policies: read by the local access check, not created in moto"
IGNORED_TYPES = {
    "AWS::IAM::Role": _READ_BY_ACCESS_CHECK,
    "AWS::IAM::Policy": _READ_BY_ACCESS_CHECK,
    "AWS::IAM::ManagedPolicy": _READ_BY_ACCESS_CHECK,
    "AWS::SQS::QueuePolicy": _READ_BY_ACCESS_CHECK,
    "AWS::SNS::TopicPolicy": _READ_BY_ACCESS_CHECK,
    "AWS::Lambda::Permission": _READ_BY_ACCESS_CHECK,
    "AWS::Events::EventBusPolicy": _READ_BY_ACCESS_CHECK,
    "AWS::Logs::LogGroup": "function output goes to the local function log",
    "AWS::CDK::Metadata": "CDK bookkeeping",
    "AWS::CloudWatch::Alarm": "CloudWatch alarms and dashboards",
    "AWS::CloudWatch::Dashboard": "CloudWatch alarms and dashboards",
    "AWS::XRay::SamplingRule": "tracing: nothing is traced locally",
}


class UnsupportedResourceError(Exception):
    """The template holds resources the local runtime cannot run."""


@dataclass
class Topology:
    """What the local runtime drives: the glue moto lacks, and the names of what it made."""

    functions: dict[str, LocalFunction] = field(default_factory=dict)
    pipes: list[StreamPipe] = field(default_factory=list)
    event_sources: list[SqsEventSource] = field(default_factory=list)
    tap_targets: list[TapTarget] = field(default_factory=list)
    buses: dict[str, str] = field(default_factory=dict)  # logical id -> name
    tables: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> url
    ignored: dict[str, str] = field(default_factory=dict)  # logical id -> reason
    state_machine_roles: dict[str, str] = field(default_factory=dict)  # state machine -> role
    unsupported: dict[str, str] = field(default_factory=dict)  # logical id -> type
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    layers: dict[str, Path] = field(default_factory=dict)  # layer version ARN -> its content
    security_groups: SecurityGroups = field(default_factory=SecurityGroups)
    schedules: list[ScheduledRule] = field(default_factory=list)


@dataclass
class Provisioner:
    assembly: StackAssembly
    clients: AwsClients
    resolver: Resolver
    function_log: TextIO | None = None
    topology: Topology = field(default_factory=Topology)
    _queue_urls_by_arn: dict[str, str] = field(default_factory=dict)
    _functions_by_arn: dict[str, LocalFunction] = field(default_factory=dict)
    _async_configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def survey(self) -> Topology:
        """Classify every resource without creating anything."""
        for logical_id, resource in self.assembly.resources.items():
            kind = resource["Type"]
            if kind in IGNORED_TYPES:
                self.topology.ignored[logical_id] = IGNORED_TYPES[kind]
            elif kind not in self._handlers():
                self.topology.unsupported[logical_id] = kind
        return self.topology

    def provision(self) -> Topology:
        self.survey()
        if self.topology.unsupported:
            listed = ", ".join(f"{lid} ({kind})" for lid, kind in self.topology.unsupported.items())
            raise UnsupportedResourceError(f"the local runtime cannot run: {listed}")
        resources = self.assembly.resources
        graph = {
            logical_id: {
                ref
                for ref in references(resource.get("Properties", {}))
                | set(_as_list(resource.get("DependsOn")))
                if ref in resources
            }
            for logical_id, resource in resources.items()
        }
        for logical_id in graphlib.TopologicalSorter(graph).static_order():
            resource = resources[logical_id]
            handler = self._handlers().get(resource["Type"])
            if handler is None:
                self._record_ignored(logical_id, resource["Type"])
                continue
            handler(logical_id, self.resolver.resolve(resource.get("Properties", {})))
        self._finish_async_configs()
        return self.topology

    def _handlers(self) -> dict[str, Callable[[str, dict[str, Any]], None]]:
        return {
            "AWS::KMS::Key": self._key,
            "AWS::DynamoDB::GlobalTable": self._table,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Topic": self._topic,
            "AWS::Events::EventBus": self._bus,
            "AWS::Events::Archive": self._archive,
            "AWS::Events::Rule": self._rule,
            "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventInvokeConfig": self._event_invoke_config,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::Pipes::Pipe": self._pipe,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::EC2::SecurityGroup": self._security_group,
            "AWS::EC2::SecurityGroupEgress": self._security_group_egress,
        }

    # -- naming ---------------------------------------------------------------------------

    def _name(self, logical_id: str, given: Any, limit: int = 80) -> str:
        if isinstance(given, str) and given:
            return given
        return f"{self.assembly.stack_name}-{logical_id}"[:limit]

    def _arn(self, service: str, resource: str) -> str:
        env = self.resolver.environment
        return f"arn:{env.partition}:{service}:{env.region}:{env.account}:{resource}"

    def _record(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        self.resolver.refs[logical_id] = ref
        for name, value in attributes.items():
            self.resolver.attributes[(logical_id, name)] = value

    def _record_ignored(self, logical_id: str, kind: str) -> None:
        # Ignored types still get names, so what refers to them resolves.
        service = kind.split("::")[1].lower()
        ref, arn = logical_id, self._arn(service, f"{logical_id}")
        if kind == "AWS::IAM::Role":
            # The role's name as CloudFormation would give it (RoleName, else generated).
            props = self.assembly.resources[logical_id].get("Properties", {})
            given, path = props.get("RoleName"), props.get("Path", "/")
            ref = given if isinstance(given, str) and given else logical_id
            env = self.resolver.environment
            arn = f"arn:{env.partition}:iam::{env.account}:role{path}{ref}"
        elif kind == "AWS::IAM::ManagedPolicy":
            env = self.resolver.environment
            arn = f"arn:{env.partition}:iam::{env.account}:policy/{logical_id}"
            ref = arn  # Ref of a managed policy is its ARN
        self._record(logical_id, ref, Arn=arn)

    # -- resources ------------------------------------------------------------------------

    def _key(self, logical_id: str, props: dict[str, Any]) -> None:
        key = self.clients.kms.create_key(Description=props.get("Description", logical_id))
        metadata = key["KeyMetadata"]
        self._record(logical_id, metadata["KeyId"], Arn=metadata["Arn"], KeyId=metadata["KeyId"])

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        # The value: the template's SecretString, else a random one as GenerateSecretString
        # would make (the template never holds a generated value).
        value = props.get("SecretString") or secrets.token_urlsafe(32)
        created = self.clients.secretsmanager.create_secret(
            Name=self._name(logical_id, props.get("Name"), limit=512),
            Description=props.get("Description", ""),
            SecretString=value,
            **({"KmsKeyId": props["KmsKeyId"]} if props.get("KmsKeyId") else {}),
        )
        # Ref of a secret is its ARN, with the suffix Secrets Manager appends.
        self._record(logical_id, created["ARN"], Id=created["ARN"])
        self.topology.secrets[logical_id] = created["ARN"]

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("TableName"))
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        stream = props.get("StreamSpecification")
        if stream:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(index_kind):
                request[index_kind] = [
                    {
                        k: v
                        for k, v in index.items()
                        if k in ("IndexName", "KeySchema", "Projection")
                    }
                    for index in props[index_kind]
                ]
        table = self.clients.dynamodb.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.clients.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        self._record(
            logical_id, name, Arn=table["TableArn"], StreamArn=table.get("LatestStreamArn")
        )
        self.topology.tables[logical_id] = name

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        fifo = bool(props.get("FifoQueue"))
        name = self._name(logical_id, props.get("QueueName"), 75) + (
            ".fifo" if fifo and not str(props.get("QueueName", "")).endswith(".fifo") else ""
        )
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for key, value in props.items()
            if key
            in (
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "ReceiveMessageWaitTimeSeconds",
                "RedrivePolicy",
                "FifoQueue",
                "ContentBasedDeduplication",
                "MaximumMessageSize",
            )
        }
        url = self.clients.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self._arn("sqs", name)
        self._queue_urls_by_arn[arn] = url
        self._record(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)
        self.topology.queues[logical_id] = url

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("TopicName"), 256)
        arn = self.clients.sns.create_topic(Name=name)["TopicArn"]
        for subscription in props.get("Subscription", []):
            self.clients.sns.subscribe(
                TopicArn=arn,
                Protocol=subscription["Protocol"],
                Endpoint=subscription["Endpoint"],
            )
        self._record(logical_id, arn, TopicArn=arn, TopicName=name)

    def _bus(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("Name"), 256)
        arn = self.clients.events.create_event_bus(Name=name)["EventBusArn"]
        self._record(logical_id, name, Arn=arn, Name=name)
        self.topology.buses[logical_id] = name

    def _archive(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("ArchiveName"), 48)
        request: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        if props.get("EventPattern"):
            request["EventPattern"] = json.dumps(props["EventPattern"])
        if props.get("RetentionDays") is not None:
            request["RetentionDays"] = int(props["RetentionDays"])
        arn = self.clients.events.create_archive(**request)["ArchiveArn"]
        self._record(logical_id, name, Arn=arn)

    def _layer(self, logical_id: str, props: dict[str, Any]) -> None:
        # The content is the staged asset. Python code in a layer is not what runs locally (the
        # dependencies come from the project's virtual environment); its files are, where a
        # function's environment names them under /opt (payment_local/functions.py).
        name = self._name(logical_id, props.get("LayerName"), 140)
        arn = self._arn("lambda", f"layer:{name}:1")
        key = props.get("Content", {}).get("S3Key")
        if isinstance(key, str):
            self.topology.layers[arn] = self.assembly.asset_path(key)
        # Ref of a layer version is its ARN.
        self._record(logical_id, arn, LayerVersionArn=arn)

    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("FunctionName"), 64)
        arn = self._arn("lambda", f"function:{name}")
        function = LocalFunction(
            logical_id=logical_id,
            name=name,
            arn=arn,
            handler=props["Handler"],
            code_path=self.assembly.asset_path(props["Code"]["S3Key"]),
            environment={
                k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()
            },
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            log=self.function_log,
            log_level=application_log_level(props.get("LoggingConfig")),
            role_arn=str(props["Role"]) if props.get("Role") else None,
            # In the template's order, as Lambda extracts them; a layer of another account or
            # stack has no content here.
            layers=[
                self.topology.layers[str(layer)]
                for layer in props.get("Layers", [])
                if str(layer) in self.topology.layers
            ],
            network=self._network_of(name, props.get("VpcConfig")),
        )
        dead_letter = props.get("DeadLetterConfig", {}).get("TargetArn")
        self._async_configs.setdefault(arn, {})["dead_letter_arn"] = dead_letter
        self.topology.functions[logical_id] = function
        self._functions_by_arn[arn] = function
        env = self.resolver.environment
        register_function(env.account, env.region, [name, arn], _invoker(function))
        self._record(logical_id, name, Arn=arn)

    def _security_group(self, logical_id: str, props: dict[str, Any]) -> None:
        # Not created in moto: the VPC is usually the bank's (imported by id). The egress rules
        # are what the local network check reads (payment_local/network.py).
        group_id = f"sg-local{len(self.topology.security_groups.rules):09x}"
        self.topology.security_groups.add_group(group_id, props.get("SecurityGroupEgress", []))
        self._record(logical_id, group_id, GroupId=group_id, VpcId=props.get("VpcId"))

    def _security_group_egress(self, logical_id: str, props: dict[str, Any]) -> None:
        self.topology.security_groups.add_rule(str(props["GroupId"]), props)
        self._record(logical_id, logical_id)

    def _network_of(self, name: str, config: dict[str, Any] | None) -> FunctionNetwork | None:
        if not config:
            return None
        return FunctionNetwork(
            function_name=name,
            security_group_ids=tuple(str(g) for g in config.get("SecurityGroupIds", [])),
            subnet_ids=tuple(str(s) for s in config.get("SubnetIds", [])),
            groups=self.topology.security_groups,
        )

    def _state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("StateMachineName"), 80)
        definition = props.get("DefinitionString") or json.dumps(props.get("Definition"))
        if not props.get("DefinitionString") and not props.get("Definition"):
            raise UnsupportedResourceError(
                f"{logical_id}: only inline definitions (DefinitionString/Definition) run locally"
            )
        # CloudFormation replaces ${Name} with DefinitionSubstitutions[Name]; so do we.
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        arn = self.clients.stepfunctions.create_state_machine(
            name=name,
            definition=definition,
            roleArn=props.get("RoleArn") or self._arn("iam", f"role/{logical_id}"),
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        if props.get("RoleArn"):
            self.topology.state_machine_roles[arn] = str(props["RoleArn"])
        self._record(logical_id, arn, Arn=arn, Name=name)

    def _event_invoke_config(self, logical_id: str, props: dict[str, Any]) -> None:
        function = self._function_named(props["FunctionName"])
        config = self._async_configs.setdefault(function.arn, {})
        if "MaximumRetryAttempts" in props:
            config["maximum_retry_attempts"] = int(props["MaximumRetryAttempts"])
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if on_failure:
            config["on_failure_arn"] = on_failure
        self._record(logical_id, logical_id)

    def _event_source_mapping(self, logical_id: str, props: dict[str, Any]) -> None:
        source_arn = props["EventSourceArn"]
        if source_arn not in self._queue_urls_by_arn:
            self.topology.unsupported[logical_id] = "AWS::Lambda::EventSourceMapping (non-SQS)"
            raise UnsupportedResourceError(
                f"{logical_id}: only SQS event sources run locally, not {source_arn}"
            )
        self.topology.event_sources.append(
            SqsEventSource(
                function=self._function_named(props["FunctionName"]),
                queue_url=self._queue_urls_by_arn[source_arn],
                queue_arn=source_arn,
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                clients=self.clients,
                region=self.resolver.environment.region,
            )
        )
        self._record(logical_id, logical_id)

    def _rule(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("Name"), 64)
        bus = props.get("EventBusName", "default")
        schedule = props.get("ScheduleExpression")
        if "EventPattern" in props:
            matching = {"EventPattern": json.dumps(props["EventPattern"])}
        elif schedule is not None:
            # moto stores the schedule but never fires it: payment_local/schedules.py does.
            try:
                period = period_seconds(schedule)
            except ScheduleError as error:
                raise UnsupportedResourceError(f"{logical_id}: {error}") from None
            matching = {"ScheduleExpression": schedule}
        else:
            raise UnsupportedResourceError(f"{logical_id}: a rule with no pattern and no schedule")
        self.clients.events.put_rule(
            Name=name, EventBusName=bus, State=props.get("State", "ENABLED"), **matching
        )
        rule_arn = self._arn("events", f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}")
        scheduled = (
            ScheduledRule(name=name, rule_arn=rule_arn, period_s=period)
            if schedule is not None and props.get("State", "ENABLED") == "ENABLED"
            else None
        )
        bus_arn = bus if bus.startswith("arn:") else self._arn("events", f"event-bus/{bus}")
        moto_targets = []
        for target in props.get("Targets", []):
            arn = target["Arn"]
            service = arn.split(":")[2]
            if service == "events":
                # Bus to bus stays moto's (and unchecked: see ADR 0008).
                moto_targets.append(
                    {k: v for k, v in target.items() if k not in ("RetryPolicy", "RoleArn")}
                )
                continue
            # Every other target goes through a tap, so the runtime delivers it: with the
            # semantics moto lacks, and with the access check of the principal that delivers.
            tap_url, tap_arn = self._tap_queue(name, target["Id"])
            moto_targets.append(tap_registration(target["Id"], tap_arn))
            if scheduled is not None:
                scheduled.tap_urls.append(tap_url)
            self.topology.tap_targets.append(
                TapTarget(
                    rule_name=name,
                    target_id=target["Id"],
                    queue_url=tap_url,
                    delivery=self._delivery(service, target),
                    input_constant=target.get("Input"),
                    input_path=target.get("InputPath"),
                    input_transformer=target.get("InputTransformer"),
                    rule_arn=rule_arn,
                    bus_arn=bus_arn,
                )
            )
        if moto_targets:
            self.clients.events.put_targets(Rule=name, EventBusName=bus, Targets=moto_targets)
        if scheduled is not None:
            self.topology.schedules.append(scheduled)
        self._record(logical_id, name, Arn=rule_arn)

    def _tap_queue(self, rule_name: str, target_id: str) -> tuple[str, str]:
        name = f"tap-{rule_name}-{target_id}"[:80]
        url = self.clients.sqs.create_queue(QueueName=name)["QueueUrl"]
        return url, self._arn("sqs", name)

    def _delivery(self, service: str, target: dict[str, Any]) -> Delivery:
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        dead_letter_url = self._queue_urls_by_arn.get(dead_letter) if dead_letter else None
        target_dead_letter = TargetDeadLetter(self.clients, dead_letter_url, dead_letter)
        retries = int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185))
        if service == "lambda":
            unqualified = ":".join(target["Arn"].split(":")[:7])  # drop a version or alias
            function = self._functions_by_arn[unqualified]
            # Completed by _finish_async_configs once every EventInvokeConfig is known.
            return AsyncLambdaInvocation(
                function=function, clients=self.clients, target_dead_letter=target_dead_letter
            )
        if service == "states":
            return StateMachineExecution(
                state_machine_arn=target["Arn"],
                clients=self.clients,
                maximum_retry_attempts=retries,
                dead_letter_queue_url=dead_letter_url,
                target_dead_letter=target_dead_letter,
                role_arn=target.get("RoleArn"),
            )
        if service == "sqs":
            if target["Arn"] not in self._queue_urls_by_arn:
                raise UnsupportedResourceError(
                    f"rule target {target['Arn']} is not a queue of the template"
                )
            return SqsDelivery(
                queue_url=self._queue_urls_by_arn[target["Arn"]],
                queue_arn=target["Arn"],
                clients=self.clients,
                message_group_id=target.get("SqsParameters", {}).get("MessageGroupId"),
                target_dead_letter=target_dead_letter,
            )
        raise UnsupportedResourceError(f"rule targets of {service} are not supported locally")

    def _finish_async_configs(self) -> None:
        for tap in self.topology.tap_targets:
            delivery = tap.delivery
            if not isinstance(delivery, AsyncLambdaInvocation):
                continue
            config = self._async_configs.get(delivery.function.arn, {})
            delivery.maximum_retry_attempts = config.get("maximum_retry_attempts", 2)
            failure_arn = config.get("on_failure_arn") or config.get("dead_letter_arn")
            if failure_arn:
                if failure_arn not in self._queue_urls_by_arn:
                    raise UnsupportedResourceError(
                        f"{delivery.function.logical_id}: only SQS on-failure destinations and "
                        f"dead-letter queues run locally, not {failure_arn}"
                    )
                delivery.on_failure_queue_url = self._queue_urls_by_arn[failure_arn]

    def _pipe(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self._name(logical_id, props.get("Name"), 64)
        source = props["Source"]
        target = props["Target"]
        if ":dynamodb:" not in source or ":event-bus/" not in target:
            raise UnsupportedResourceError(
                f"{logical_id}: only DynamoDB stream -> event bus pipes run locally"
            )
        parameters = props.get("SourceParameters", {})
        stream = parameters.get("DynamoDBStreamParameters", {})
        bus_parameters = props.get("TargetParameters", {}).get("EventBridgeEventBusParameters", {})
        dead_letter = stream.get("DeadLetterConfig", {}).get("Arn")
        enrichment = props.get("Enrichment")
        self.topology.pipes.append(
            StreamPipe(
                name=name,
                stream_arn=source,
                bus_name=target.split(":event-bus/")[1],
                source=bus_parameters.get("Source"),
                detail_type=bus_parameters.get("DetailType"),
                batch_size=int(stream.get("BatchSize", 100)),
                # -1 means "until the record expires"; locally that is a large bound.
                maximum_retry_attempts=_bounded(int(stream.get("MaximumRetryAttempts", -1))),
                bisect=stream.get("OnPartialBatchItemFailure") == "AUTOMATIC_BISECT",
                starting_position=stream.get("StartingPosition", "LATEST"),
                filters=[
                    EventPattern.load(f["Pattern"])
                    for f in parameters.get("FilterCriteria", {}).get("Filters", [])
                ],
                enrichment=self._functions_by_arn[enrichment] if enrichment else None,
                dead_letter_queue_url=self._queue_urls_by_arn.get(dead_letter)
                if dead_letter
                else None,
                clients=self.clients,
                account=self.resolver.environment.account,
                region=self.resolver.environment.region,
            )
        )
        pipe = self.topology.pipes[-1]
        pipe.arn = self._arn("pipes", f"pipe/{name}")
        pipe.role_arn = str(props["RoleArn"]) if props.get("RoleArn") else None
        self._record(logical_id, name, Arn=pipe.arn)

    def _function_named(self, reference: str) -> LocalFunction:
        for function in self.topology.functions.values():
            if reference in (function.name, function.arn):
                return function
        raise UnsupportedResourceError(f"no function {reference} in the template")


def _invoker(function: LocalFunction) -> Callable[[Any], Any]:
    def invoke(payload: Any) -> Any:
        try:
            return function.invoke(payload)
        except FunctionError as error:
            raise InvocationError(error.error_type, error.error_message) from error

    return invoke


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _bounded(retries: int) -> int:
    return 10_000 if retries < 0 else retries
