"""Where the operations act: the local state on moto, or a deployed stack on AWS.

Both give the same things: the template, names resolved from logical ids, boto3 clients, and
the few hand-backs a redrive needs (an event to a rule's target, an invocation record's
event to its function, stream records to a pipe). Everything else in ``redrive``,
``replay`` and ``status`` is the same code on both.

Locally a hand-back goes through the runtime's own delivery objects, so what AWS would do
with it (retries, a dead-letter queue again, an access refusal) happens here too; on AWS it
is the API call an operator's credentials make (``lambda:InvokeFunction`` asynchronously,
``states:StartExecution``, ``sqs:SendMessage``, ``events:PutEvents``).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from payment_local.operations.dead_letters import DeadLetterQueue
from payment_local.rules import AsyncLambdaInvocation, StateMachineExecution

TRANSACTIONS_TABLE_OUTPUT = "TransactionsTableName"
RETENTION_OUTPUT = "TransactionRetentionSeconds"


class OperationError(Exception):
    """An operation that cannot be done as asked; the message says why and what to do."""


class Plane(Protocol):
    template: dict[str, Any]
    sqs: Any
    events: Any
    dynamodb: Any
    dynamodbstreams: Any

    @property
    def where(self) -> str: ...

    @property
    def who(self) -> str: ...

    def ref(self, logical_id: str) -> str: ...

    def arn(self, logical_id: str) -> str: ...

    def output(self, name: str) -> str | None: ...

    def deliver_to_target(self, target_arn: str, event: Any) -> None: ...

    def invoke_async(self, function_arn: str, payload: Any) -> None: ...

    def pipe_redeliver(self, pipe_logical_id: str, records: list[dict[str, Any]]) -> None: ...

    def start_message_move(self, source_arn: str, destination_arn: str) -> str | None: ...

    def settle(self) -> None: ...

    def alarms(self) -> list[dict[str, Any]] | None: ...


def queue_arn_from_url(url: str) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` -> the queue's ARN."""
    host, account, name = url.split("://", 1)[-1].split("/")[:3]
    region = host.split(".")[1] if host.startswith("sqs.") else "us-east-1"
    partition = "aws-cn" if host.endswith(".cn") else "aws"
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


@dataclass
class LocalPlane:
    """A runtime restored from a local state (``state.LocalState.restore``)."""

    runtime: Any  # payment_local.runtime.LocalRuntime
    state_name: str
    template: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.template = self.runtime.assembly.template
        clients = self.runtime.clients  # the runtime's own: not a template principal
        self.sqs, self.events = clients.sqs, clients.events
        self.dynamodb, self.dynamodbstreams = clients.dynamodb, clients.dynamodbstreams

    @property
    def where(self) -> str:
        return f"local state {self.state_name!r} ({self.runtime.assembly.stack_name} on moto)"

    @property
    def who(self) -> str:
        return f"{getpass.getuser()}@local"

    def ref(self, logical_id: str) -> str:
        return str(self.runtime.resolver.resolve({"Ref": logical_id}))

    def arn(self, logical_id: str) -> str:
        return str(self.runtime.resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]}))

    def output(self, name: str) -> str | None:
        try:
            return str(self.runtime.output(name))
        except KeyError:
            return None

    def _deliveries(self) -> list[Any]:
        return [target.delivery for target in self.runtime.topology.tap_targets]

    def deliver_to_target(self, target_arn: str, event: Any) -> None:
        if ":sqs:" in target_arn:
            url = self.sqs.get_queue_url(QueueName=target_arn.rsplit(":", 1)[-1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            return
        if ":lambda:" in target_arn:
            self.invoke_async(target_arn, event)
            return
        for delivery in self._deliveries():
            if (
                isinstance(delivery, StateMachineExecution)
                and delivery.state_machine_arn == target_arn
            ):
                delivery.deliver(event)
                return
        raise OperationError(f"no rule target {target_arn} in the local stack")

    def invoke_async(self, function_arn: str, payload: Any) -> None:
        bare = function_arn.removesuffix(":$LATEST")
        for delivery in self._deliveries():
            if isinstance(delivery, AsyncLambdaInvocation) and delivery.function.arn == bare:
                delivery.deliver(payload)  # Lambda's retries, then its on-failure destination
                return
        raise OperationError(f"no asynchronously invoked function {bare} in the local stack")

    def pipe_redeliver(self, pipe_logical_id: str, records: list[dict[str, Any]]) -> None:
        name = self.ref(pipe_logical_id)
        for pipe in self.runtime.topology.pipes:
            if pipe.name == name or pipe.arn.endswith(f"/{name}"):
                pipe.redeliver(records)
                return
        raise OperationError(f"no pipe {pipe_logical_id} in the local stack")

    def start_message_move(self, source_arn: str, destination_arn: str) -> str | None:
        return None  # moto has no message move task: the redrive moves them one by one

    def settle(self) -> None:
        self.runtime.run_until_idle()

    def alarms(self) -> list[dict[str, Any]] | None:
        return None


@dataclass
class AwsPlane:
    """A deployed stack, by its name, with the caller's credentials (boto3's usual chain)."""

    stack_name: str
    region: str | None = None
    session: Any = None
    template: dict[str, Any] = field(init=False)
    _physical: dict[str, str] = field(init=False)
    _outputs: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        session = self.session or boto3.session.Session(region_name=self.region)
        self.session = session
        self.region = session.region_name
        if not self.region:
            raise OperationError("no AWS region: give --region or set AWS_REGION")
        cloudformation = session.client("cloudformation")
        try:
            body = cloudformation.get_template(StackName=self.stack_name)["TemplateBody"]
            stack = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"][0]
            paginator = cloudformation.get_paginator("list_stack_resources")
            resources = [
                summary
                for page in paginator.paginate(StackName=self.stack_name)
                for summary in page["StackResourceSummaries"]
            ]
        except (BotoCoreError, ClientError) as error:
            raise OperationError(f"cannot read stack {self.stack_name}: {error}") from None
        self.template = body if isinstance(body, dict) else json.loads(body)
        self._physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.sqs = session.client("sqs")
        self.events = session.client("events")
        self.dynamodb = session.client("dynamodb")
        self.dynamodbstreams = session.client("dynamodbstreams")
        self.account = session.client("sts").get_caller_identity()
        self.partition = self.account["Arn"].split(":")[1]

    @property
    def where(self) -> str:
        return f"stack {self.stack_name} in {self.region}"

    @property
    def who(self) -> str:
        return str(self.account["Arn"])

    def ref(self, logical_id: str) -> str:
        if logical_id not in self._physical:
            raise OperationError(f"stack {self.stack_name} has no resource {logical_id}")
        return self._physical[logical_id]

    def arn(self, logical_id: str) -> str:
        physical = self.ref(logical_id)
        kind = self.template["Resources"][logical_id]["Type"]
        account, region, partition = self.account["Account"], self.region, self.partition
        if physical.startswith("arn:"):
            return physical
        if kind == "AWS::SQS::Queue":
            return queue_arn_from_url(physical)
        if kind == "AWS::Lambda::Function":
            return f"arn:{partition}:lambda:{region}:{account}:function:{physical}"
        if kind == "AWS::Events::EventBus":
            return f"arn:{partition}:events:{region}:{account}:event-bus/{physical}"
        if kind == "AWS::Events::Archive":
            return f"arn:{partition}:events:{region}:{account}:archive/{physical}"
        if kind == "AWS::Events::Rule":
            bus, _, rule = physical.rpartition("|")
            path = f"{bus}/{rule}" if bus else rule
            return f"arn:{partition}:events:{region}:{account}:rule/{path}"
        if kind == "AWS::Pipes::Pipe":
            return f"arn:{partition}:pipes:{region}:{account}:pipe/{physical}"
        raise OperationError(f"no ARN for {logical_id} ({kind})")

    def output(self, name: str) -> str | None:
        return self._outputs.get(name)

    def deliver_to_target(self, target_arn: str, event: Any) -> None:
        body = json.dumps(event)
        if ":sqs:" in target_arn:
            url = self.sqs.get_queue_url(QueueName=target_arn.rsplit(":", 1)[-1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
        elif ":lambda:" in target_arn:
            self.invoke_async(target_arn, event)
        elif ":states:" in target_arn:
            self.session.client("stepfunctions").start_execution(
                stateMachineArn=target_arn, input=body
            )
        else:
            raise OperationError(f"cannot redeliver to {target_arn}: not a queue, function "
                                 "or state machine")  # fmt: skip

    def invoke_async(self, function_arn: str, payload: Any) -> None:
        self.session.client("lambda").invoke(
            FunctionName=function_arn.removesuffix(":$LATEST"),
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )

    def pipe_redeliver(self, pipe_logical_id: str, records: list[dict[str, Any]]) -> None:
        """What the pipe does with a batch: the enrichment, then its events on the bus."""
        pipe = self.session.client("pipes").describe_pipe(Name=self.ref(pipe_logical_id))
        parameters = (pipe.get("TargetParameters") or {}).get("EventBridgeEventBusParameters", {})
        size = int(
            ((pipe.get("SourceParameters") or {}).get("DynamoDBStreamParameters") or {}).get(
                "BatchSize", 10
            )
        )
        functions = self.session.client("lambda")
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            items: list[Any] = batch
            if pipe.get("Enrichment"):
                response = functions.invoke(
                    FunctionName=pipe["Enrichment"], Payload=json.dumps(batch).encode()
                )
                result = json.loads(response["Payload"].read() or b"null")
                if response.get("FunctionError"):
                    raise OperationError(f"the pipe's enrichment failed: {result}")
                items = result if isinstance(result, list) else [result]
            for chunk_start in range(0, len(items), 10):
                chunk = items[chunk_start : chunk_start + 10]
                response = self.events.put_events(
                    Entries=[
                        {
                            "EventBusName": pipe["Target"],
                            "Source": parameters.get("Source") or f"Pipe {pipe['Name']}",
                            "DetailType": parameters.get("DetailType") or "Event from aws:dynamodb",
                            "Detail": json.dumps(item),
                        }
                        for item in chunk
                    ]
                )
                if response.get("FailedEntryCount"):
                    raise OperationError(
                        f"{response['FailedEntryCount']} events were refused by the bus"
                    )

    def start_message_move(self, source_arn: str, destination_arn: str) -> str | None:
        response = self.sqs.start_message_move_task(
            SourceArn=source_arn, DestinationArn=destination_arn
        )
        return str(response["TaskHandle"])

    def settle(self) -> None:
        return None  # AWS turns its own crank

    def alarms(self) -> list[dict[str, Any]] | None:
        prefix = self.output("AlarmNamePrefix") or self.stack_name
        cloudwatch = self.session.client("cloudwatch")
        paginator = cloudwatch.get_paginator("describe_alarms")
        return [
            alarm
            for page in paginator.paginate(AlarmNamePrefix=prefix)
            for alarm in page.get("MetricAlarms", [])
        ]


def dead_letter_url(plane: Plane, queue: DeadLetterQueue) -> str:
    """The queue's URL: from its stack output where it has one, else from its resource."""
    from_output = plane.output(queue.output) if queue.output else None
    return from_output or plane.ref(queue.logical_id)
