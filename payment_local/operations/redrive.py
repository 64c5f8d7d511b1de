"""Redrive a dead-letter queue: hand each message back to what failed to take it.

What "back" means depends on who wrote the message (``dead_letters``), told apart by its
shape: an asynchronous invocation record goes to its function again (its
``requestPayload``); a pipe's batch record is re-read from the table and goes through the
pipe's enrichment and onto its bus; an event goes to the rule target that could not take
it, or to the queue whose redrive policy moved it. A message is deleted only once handed
back; one that cannot be is left where it is, and counted.

Safe to repeat: everything downstream of these hops is idempotent (the deduplication
verdicts, the ledger's transfer ids), so a message handed back twice posts once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payment_local.operations.dead_letters import DeadLetterQueue, Writer
from payment_local.operations.planes import (
    RETENTION_OUTPUT,
    TRANSACTIONS_TABLE_OUTPUT,
    OperationError,
    Plane,
    dead_letter_url,
)

RECEIVE_LIMIT = 10
# Long enough to hand a message back before another reader could see it again.
VISIBILITY_SECONDS = 120
# Seconds either side of a pipe batch's arrival times when items are found by write time.
WINDOW_SLACK_SECONDS = 2


@dataclass
class RedriveResult:
    queue: str
    depth: int = 0  # messages visible when it started
    handed_back: int = 0
    failed: int = 0
    by_way: Counter[str] = field(default_factory=Counter)  # how each went back
    records_reread: int = 0  # table items a pipe's batches stood for
    transaction_ids: list[str] = field(default_factory=list)
    move_task: str | None = None
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "dryRun": self.dry_run,
            "depth": self.depth,
            "handedBack": self.handed_back,
            "failed": self.failed,
            "byWay": dict(self.by_way),
            "recordsReread": self.records_reread,
            "moveTask": self.move_task,
            "errors": self.errors[:20],
        }


def depth(plane: Plane, url: str) -> tuple[int, int]:
    """Visible and in-flight messages of a queue."""
    attributes = plane.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def plan_of(queue: DeadLetterQueue, plane: Plane) -> list[str]:
    """What a redrive would do with what each writer left, in words."""
    ways = []
    for writer in queue.writers:
        if writer.kind == "queue":
            ways.append(f"messages the queue {writer.source} gave up on: back to that queue")
        elif writer.kind == "rule-target":
            ways.append(f"events rule {writer.source} could not deliver: to its target again")
        elif writer.kind == "async-invoke":
            ways.append(f"failed invocations of {writer.source}: the event to the function again")
        elif writer.kind == "pipe":
            ways.append(f"batches pipe {writer.source} gave up on: the items re-read from the "
                        "table, through the pipe's enrichment, onto its bus")  # fmt: skip
        else:
            ways.append(f"events bus {writer.source} could not deliver: to the target named")
    return ways


def redrive(
    plane: Plane, queue: DeadLetterQueue, *, dry_run: bool = False, limit: int | None = None
) -> RedriveResult:
    url = dead_letter_url(plane, queue)
    result = RedriveResult(queue.name, dry_run=dry_run, plan=plan_of(queue, plane))
    result.depth, _ = depth(plane, url)
    if dry_run or result.depth == 0:
        return result
    only_queue = [w for w in queue.writers if w.kind in ("queue", "rule-target")]
    sources = {plane.arn(w.source) for w in queue.writers if w.kind == "queue"}
    targets = {_target_arn(plane, w) for w in queue.writers if w.kind == "rule-target"}
    if limit is None and len(only_queue) == len(queue.writers) and len(sources) == 1:
        # Every message is bound for one queue (the queue's own, or the rule target that is
        # that queue): SQS moves them itself, at its own pace (a message move task).
        destination = next(iter(sources))
        if targets <= {destination}:
            handle = plane.start_message_move(plane.arn(queue.logical_id), destination)
            if handle is not None:
                result.move_task = handle
                result.handed_back = result.depth
                result.by_way["message move task"] = result.depth
                return result
    _one_by_one(plane, queue, url, result, limit)
    plane.settle()
    return result


def _one_by_one(
    plane: Plane, queue: DeadLetterQueue, url: str, result: RedriveResult, limit: int | None
) -> None:
    remaining = result.depth if limit is None else min(limit, result.depth)
    returned: list[str] = []
    while remaining > 0:
        messages = plane.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(RECEIVE_LIMIT, remaining),
            VisibilityTimeout=VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            remaining -= 1
            try:
                way, ids = _hand_back(plane, queue, message)
            except (OperationError, ClientError, BotoCoreError, ValueError, KeyError) as error:
                result.failed += 1
                result.errors.append(f"{message['MessageId']}: {error}")
                returned.append(message["ReceiptHandle"])
                continue
            plane.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            result.handed_back += 1
            result.by_way[way] += 1
            if way.startswith("re-read"):
                result.records_reread += len(ids)
            result.transaction_ids.extend(ids)
    for handle in returned:
        # What could not be handed back is there again for the next look, not in an hour.
        plane.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                            VisibilityTimeout=0)  # fmt: skip


def _target_arn(plane: Plane, writer: Writer) -> str:
    target = writer.target
    if isinstance(target, dict):
        if "Fn::GetAtt" in target:
            return plane.arn(target["Fn::GetAtt"][0])
        if "Ref" in target:
            return plane.ref(target["Ref"])
    return str(target)


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = (message.get("MessageAttributes") or {}).get(name) or {}
    string = value.get("StringValue")
    return str(string) if string else None


def _transaction_id(event: Any) -> list[str]:
    if isinstance(event, dict):
        detail = event.get("detail")
        if isinstance(detail, dict) and isinstance(detail.get("transactionId"), str):
            return [detail["transactionId"]]
    return []


def _hand_back(
    plane: Plane, queue: DeadLetterQueue, message: dict[str, Any]
) -> tuple[str, list[str]]:
    body = json.loads(message["Body"])
    if isinstance(body, dict) and "requestPayload" in body and "requestContext" in body:
        function_arn = str(body["requestContext"]["functionArn"])
        plane.invoke_async(function_arn, body["requestPayload"])
        return "invoked again", _transaction_id(body["requestPayload"])
    if isinstance(body, dict) and ("DDBStreamBatchInfo" in body or "startSequenceNumber" in body):
        pipes = [w for w in queue.writers if w.kind == "pipe"]
        if not pipes:
            raise OperationError("a pipe's batch record in a queue no pipe writes")
        ids = _reread_batch(plane, pipes[0].source, body)
        return "re-read from the table", ids
    target = _attribute(message, "TARGET_ARN")
    if target is None:
        sources = {plane.arn(w.source) for w in queue.writers if w.kind == "queue"}
        targets = {_target_arn(plane, w) for w in queue.writers if w.kind == "rule-target"}
        candidates = sources | targets
        if len(candidates) != 1:
            raise OperationError(
                "the message does not name its target (no TARGET_ARN attribute) and "
                f"{queue.name}'s writers have {len(candidates)}"
            )
        target = next(iter(candidates))
    plane.deliver_to_target(target, body)
    return ("back to the queue" if ":sqs:" in target else "to its target again"), (
        _transaction_id(body)
    )


# -- a pipe's batch: the items it stood for, from the table --------------------------------


def _reread_batch(plane: Plane, pipe: str, body: dict[str, Any]) -> list[str]:
    info = body.get("DDBStreamBatchInfo") or body
    table = plane.output(TRANSACTIONS_TABLE_OUTPUT)
    if table is None:
        raise OperationError(f"the stack has no {TRANSACTIONS_TABLE_OUTPUT} output")
    keys = _keys_from_stream(plane, info)
    if keys is None:
        keys = _keys_by_write_time(plane, table, info)
    items = []
    for key in keys:
        found = plane.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if found is not None:  # gone: quarantined or expired since, nothing to re-read
            items.append(found)
    if not items:
        return []
    stream_arn = str(info.get("streamArn", ""))
    now = time.time()
    records = [
        {
            "eventID": f"redrive-{n}",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": stream_arn.split(":")[3] if stream_arn.count(":") > 3 else "",
            "eventSourceARN": stream_arn,
            "dynamodb": {
                "ApproximateCreationDateTime": now,
                "Keys": {name: item[name] for name in keys[0]},
                "NewImage": item,
                "SequenceNumber": f"{int(str(info.get('startSequenceNumber', '0'))) + n}",
                "SizeBytes": len(json.dumps(item)),
                "StreamViewType": "NEW_IMAGE",
            },
        }
        for n, item in enumerate(items)
    ]
    plane.pipe_redeliver(pipe, records)
    return [str(i["transactionId"]["S"]) for i in items if "S" in i.get("transactionId", {})]


def _keys_from_stream(plane: Plane, info: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The batch's keys while the stream still holds its records (24 hours on AWS)."""
    streams = plane.dynamodbstreams
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        shards = streams.describe_stream(StreamArn=info["streamArn"])["StreamDescription"]
        keys: list[dict[str, Any]] = []
        for shard in shards["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=info["streamArn"],
                ShardId=shard["ShardId"],
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=str(start),
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator, Limit=1000)
                for record in page["Records"]:
                    number = int(record["dynamodb"]["SequenceNumber"])
                    if number > end:
                        return keys
                    if record.get("eventName") == "INSERT":
                        keys.append(record["dynamodb"]["Keys"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        return keys or None
    except (ClientError, BotoCoreError, KeyError):
        return None  # the stream no longer has them (or the shard): read the table instead


def _keys_by_write_time(plane: Plane, table: str, info: dict[str, Any]) -> list[dict[str, Any]]:
    """Items written within the batch's arrival window: write time is the item's expiry
    less the stage's retention (the writer sets ``expiresAt`` so)."""
    first, last = (
        info.get("approximateArrivalOfFirstRecord"),
        info.get("approximateArrivalOfLastRecord"),
    )
    retention = plane.output(RETENTION_OUTPUT)
    if first is None or last is None or retention is None:
        raise OperationError(
            "the stream no longer holds this batch and the record gives no arrival times "
            "(or the stack no retention) to find its items in the table by"
        )
    low = float(first) + int(retention) - WINDOW_SLACK_SECONDS
    high = float(last) + int(retention) + WINDOW_SLACK_SECONDS
    keys = []
    paginator = plane.dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="expiresAt BETWEEN :low AND :high",
        ExpressionAttributeValues={
            ":low": {"N": str(int(low))},
            ":high": {"N": str(int(high) + 1)},
        },
        ProjectionExpression="transactionId",
        ConsistentRead=True,
    ):
        keys += page.get("Items", [])
    return keys
