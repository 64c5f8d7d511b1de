"""From an API call to what AWS authorizes for it: action names, resource ARNs, context.

AWS does not always check the operation's own name: a ``TransactWriteItems`` item is checked
as ``PutItem``/``UpdateItem``/``DeleteItem``/``ConditionCheckItem`` on its table, a
``SendMessageBatch`` as ``SendMessage``, and a call on an encrypted resource also needs the
caller's permission on the key, which the service asks KMS for on the caller's behalf. An
operation this module does not know is checked under its own name against resource ``*``:
only an Allow on every resource lets it through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from payment_local.access.model import AccessModel
from payment_local.access.policy import Caller

EVENTS_SERVICE = "events.amazonaws.com"
BUS_CONTEXT_KEY = "kms:EncryptionContext:aws:events:event-bus:arn"
PIPE_CONTEXT = "aws:pipe:arn"
# What EventBridge Pipes documents for a DynamoDB stream source (checked when a pipe starts).
STREAM_SOURCE_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)

# The batch operations IAM checks under another name.
_SAME_AS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
}
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
# EventBridge operations on a rule (named by Name), authorized on the rule's ARN.
_RULE_OPERATIONS = {"PutRule", "DescribeRule", "DeleteRule", "EnableRule", "DisableRule"}
# DynamoDB decrypts the table key (a KMS Decrypt on the caller's behalf) to read or write items.
_DYNAMODB_DATA = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems", "ExecuteStatement",
    "BatchExecuteStatement", "ExecuteTransaction", "GetRecords",
}  # fmt: skip
# What a caller needs on the key of an encrypted queue or topic (SQS and SNS documentation).
_PRODUCER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
_CONSUMER_KEY_ACTIONS = ("kms:Decrypt",)
# Dead-letter queue redrive, named by the source queue's ARN (not a queue URL).
_MESSAGE_MOVE_OPERATIONS = {"StartMessageMoveTask", "ListMessageMoveTasks"}
# What SQS does on the source queue, in the caller's name, while a move task runs (the SQS
# Developer Guide, "Configuring queue permissions for dead-letter queue redrive").
_MOVE_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a call; ``caller`` overrides the call's principal
    (EventBridge encrypting with a bus key is the service's own request)."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    caller: Caller | None = None
    # False for what fails on the side without failing the call (an archive that cannot
    # encrypt misses the event; the event is still put): refused, it is reported only.
    blocking: bool = True


def checks_for_call(
    model: AccessModel, prefix: str, operation: str, params: Mapping[str, Any]
) -> list[Check]:
    """The checks for one call, in the order AWS makes them (the action before the key)."""
    action = _SAME_AS.get(f"{prefix}:{operation}", f"{prefix}:{operation}")
    arns = _Arns(model)
    if prefix == "dynamodb":
        return _dynamodb(model, arns, operation, params)
    if prefix == "sqs" and operation in _MESSAGE_MOVE_OPERATIONS:
        return _message_move(model, operation, params)
    if prefix == "sqs":
        queue = arns.queue(params)
        checks = [Check(action, queue)]
        if operation in ("SendMessage", "SendMessageBatch"):
            checks += _key_checks(model, queue, _PRODUCER_KEY_ACTIONS, "sqs")
        elif operation == "ReceiveMessage":
            checks += _key_checks(model, queue, _CONSUMER_KEY_ACTIONS, "sqs")
        return checks
    if prefix == "sns":
        topic = str(params.get("TopicArn") or params.get("TargetArn") or "*")
        checks = [Check(action, topic)]
        if operation in ("Publish", "PublishBatch"):
            checks += _key_checks(model, topic, _PRODUCER_KEY_ACTIONS, "sns")
        return checks
    if prefix == "events" and operation == "PutEvents":
        return _put_events(model, arns, params)
    if prefix == "events" and (operation in _RULE_OPERATIONS or "Rule" in params):
        rule = str(params.get("Rule") or params.get("Name"))
        return [Check(action, arns.rule(rule, params.get("EventBusName")))]
    if prefix == "events":
        name = params.get("EventBusName") or params.get("Name")
        return [Check(action, arns.bus(str(name)) if name else "*")]
    if prefix == "states":
        target = params.get("stateMachineArn") or params.get("executionArn") or "*"
        return [Check(action, str(target))]
    if prefix == "lambda":
        name = params.get("FunctionName")
        return [Check(action, arns.function(str(name), params.get("Qualifier")) if name else "*")]
    if prefix == "kms":
        key = params.get("KeyId")
        return [Check(action, arns.key(str(key)) if key else "*")]
    if prefix == "secretsmanager" and "SecretId" in params:
        return _secret(model, action, operation, str(params["SecretId"]))
    if prefix == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    return [Check(action, "*")]


def service_delivery_checks(
    model: AccessModel, target_arn: str, action: str, source_arn: str
) -> list[Check]:
    """What EventBridge (the service principal) needs to deliver to ``target_arn``."""
    events = Caller("service", EVENTS_SERVICE, model.account)
    context = {"aws:SourceArn": (source_arn,), "aws:SourceAccount": (model.account,)}
    checks = [Check(action, target_arn, context, events)]
    if action == "sqs:SendMessage":
        for check in _key_checks(model, target_arn, _PRODUCER_KEY_ACTIONS, "sqs"):
            checks.append(Check(check.action, check.resource, {**context, **check.context}, events))
    return checks


def pipe_definition_checks(model: AccessModel, pipe_arn: str) -> list[Check]:
    """The pipe's role decrypting the pipe's definition (its filter) to match records, when
    the pipe has a customer-managed key (EventBridge Pipes documents the role as the caller,
    with the pipe's ARN as encryption context)."""
    key = model.encryption.get(pipe_arn)
    if key is None:
        return []
    context = {
        "kms:ViaService": (f"pipes.{model.region}.amazonaws.com",),
        "kms:CallerAccount": (model.account,),
        f"kms:EncryptionContext:{PIPE_CONTEXT}": (pipe_arn,),
        "kms:EncryptionContextKeys": (PIPE_CONTEXT,),
    }
    return [Check("kms:Decrypt", key, context)]


def bus_read_checks(model: AccessModel, bus_arn: str) -> list[Check]:
    """EventBridge decrypting an event of an encrypted bus to match and deliver it."""
    key = model.encryption.get(bus_arn)
    if key is None:
        return []
    return [_bus_key_check(model, "kms:Decrypt", key, bus_arn)]


def _bus_key_check(model: AccessModel, action: str, key: str, bus_arn: str) -> Check:
    events = Caller("service", EVENTS_SERVICE, model.account)
    context = {
        "aws:SourceArn": (bus_arn,),
        "aws:SourceAccount": (model.account,),
        BUS_CONTEXT_KEY: (bus_arn,),
    }
    return Check(action, key, context, events)


def _put_events(model: AccessModel, arns: _Arns, params: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    buses: list[str] = []
    for entry in params.get("Entries", []):
        bus = arns.bus(str(entry.get("EventBusName") or "default"))
        context = {
            "events:source": (str(entry.get("Source", "")),),
            "events:detail-type": (str(entry.get("DetailType", "")),),
        }
        checks.append(Check("events:PutEvents", bus, context))
        if bus not in buses:
            buses.append(bus)
    for bus in buses:
        # The bus encrypts each event under its key, as the service principal; so does an
        # archive with a key of its own, on the side.
        if bus in model.encryption:
            checks.append(_bus_key_check(model, "kms:GenerateDataKey", model.encryption[bus], bus))
        if bus in model.archive_keys:
            archive = _bus_key_check(model, "kms:GenerateDataKey", model.archive_keys[bus], bus)
            checks.append(Check(archive.action, archive.resource, archive.context,
                                archive.caller, blocking=False))  # fmt: skip
    return checks


def _dynamodb(
    model: AccessModel, arns: _Arns, operation: str, params: Mapping[str, Any]
) -> list[Check]:
    checks: list[Check] = []
    if operation == "TransactWriteItems" or operation == "TransactGetItems":
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                checks.append(Check(_TRANSACT_ACTIONS[kind], arns.table(body["TableName"])))
    elif operation in ("BatchWriteItem", "BatchGetItem"):
        for table in params.get("RequestItems", {}):
            checks.append(Check(f"dynamodb:{operation}", arns.table(table)))
    elif "StreamArn" in params:
        checks.append(Check(f"dynamodb:{operation}", str(params["StreamArn"])))
    elif operation == "GetRecords":
        checks.append(Check("dynamodb:GetRecords", arns.stream_of(params.get("ShardIterator"))))
    elif "TableName" in params:
        table = arns.table(str(params["TableName"]))
        index = params.get("IndexName")
        checks.append(Check(f"dynamodb:{operation}", f"{table}/index/{index}" if index else table))
    else:
        checks.append(Check(f"dynamodb:{operation}", "*"))
    if operation in _DYNAMODB_DATA:
        seen: set[str] = set()
        for check in list(checks):
            table = check.resource.split("/index/")[0]
            if table not in seen:
                seen.add(table)
                checks += _key_checks(model, table, ("kms:Decrypt",), "dynamodb")
    return checks


def _message_move(model: AccessModel, operation: str, params: Mapping[str, Any]) -> list[Check]:
    """A redrive: authorized on its source queue, then run by SQS in the caller's name, which
    receives and deletes there and sends to the destination, with each queue's key.

    Locally no task runs (moto has none), so starting one is checked for everything the task
    will need: a redrive that could not move a message is refused when it starts, where AWS
    would start it and fail the task. Without ``DestinationArn`` the messages go back to the
    queues whose redrive policy names the source, which the model does not know: the send is
    then checked on ``*``, allowed only by a grant on every queue.
    """
    source = str(params.get("SourceArn") or "*")
    if operation == "ListMessageMoveTasks":
        return [Check("sqs:ListMessageMoveTasks", source)]
    destination = str(params.get("DestinationArn") or "*")
    checks = [Check("sqs:StartMessageMoveTask", source)]
    checks += [Check(action, source) for action in _MOVE_SOURCE_ACTIONS]
    checks += _key_checks(model, source, _CONSUMER_KEY_ACTIONS, "sqs")
    checks.append(Check("sqs:SendMessage", destination))
    checks += _key_checks(model, destination, _PRODUCER_KEY_ACTIONS, "sqs")
    return checks


def _secret(model: AccessModel, action: str, operation: str, secret_id: str) -> list[Check]:
    """A secret's action on its ARN; reading its value also needs the key's Decrypt, which
    Secrets Manager asks KMS for in the caller's name (a secret without a key of its own uses
    aws/secretsmanager, which allows every principal of the account)."""
    arn = secret_id if secret_id.startswith("arn:") else model.secrets_by_name.get(secret_id, "*")
    checks = [Check(action, arn)]
    if operation == "GetSecretValue":
        checks += _key_checks(model, arn, ("kms:Decrypt",), "secretsmanager")
    return checks


def _key_checks(
    model: AccessModel, resource: str, actions: tuple[str, ...], service: str
) -> list[Check]:
    key = model.encryption.get(resource)
    if key is None:
        return []
    context = {
        "kms:ViaService": (f"{service}.{model.region}.amazonaws.com",),
        "kms:CallerAccount": (model.account,),
    }
    return [Check(action, key, context) for action in actions]


@dataclass(frozen=True)
class _Arns:
    model: AccessModel

    def _arn(self, service: str, resource: str) -> str:
        m = self.model
        return f"arn:{m.partition}:{service}:{m.region}:{m.account}:{resource}"

    def table(self, name: str) -> str:
        return name if name.startswith("arn:") else self._arn("dynamodb", f"table/{name}")

    def stream_of(self, iterator: Any) -> str:
        # moto's shard iterators carry the stream ARN; AWS's are opaque to us.
        found = re.search(r"arn:[^\s\"']+/stream/[^\s\"'|]+", str(iterator or ""))
        return found.group(0) if found else "*"

    def queue(self, params: Mapping[str, Any]) -> str:
        url = params.get("QueueUrl")
        if url:
            account, name = str(url).rstrip("/").split("/")[-2:]
            m = self.model
            return f"arn:{m.partition}:sqs:{m.region}:{account}:{name}"
        queue_name = params.get("QueueName")
        return self._arn("sqs", str(queue_name)) if queue_name else "*"

    def bus(self, name: str) -> str:
        return name if name.startswith("arn:") else self._arn("events", f"event-bus/{name}")

    def rule(self, name: str, bus: Any = None) -> str:
        if name.startswith("arn:"):
            return name
        bus_name = str(bus or "default").rsplit("/", 1)[-1]
        return self._arn(
            "events", f"rule/{name}" if bus_name == "default" else f"rule/{bus_name}/{name}"
        )

    def function(self, name: str, qualifier: Any = None) -> str:
        if name.startswith("arn:"):
            arn = name
        elif ":function:" in name:  # a partial ARN, "123456789012:function:name"
            arn = f"arn:{self.model.partition}:lambda:{self.model.region}:{name}"
        else:
            arn = self._arn("lambda", f"function:{name}")
        return f"{arn}:{qualifier}" if qualifier and arn.count(":") == 6 else arn

    def key(self, identifier: str) -> str:
        if identifier.startswith("arn:"):
            return identifier
        for arn in self.model.key_policies:
            if arn.endswith(f"/{identifier}"):
                return arn
        return self._arn("kms", f"key/{identifier}")
