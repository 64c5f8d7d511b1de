"""Reading moto's data out, and putting it back, for ``state.LocalState``.

The API cannot do either faithfully: a Scan is fine for reading, but a PutItem on a table
with a stream writes a stream record the pipe would read again, and receiving a message to
read it counts a receive and hides it. So this reads and writes moto's models directly,
for the three services whose data outlives a command: DynamoDB tables, SQS queues and
EventBridge archives (pinned moto version: ``moto_internals.check_version``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.events.models import events_backends
from moto.sqs.models import sqs_backends

from payment_local.runtime import LocalRuntime


def _backend(backends: Any, runtime: LocalRuntime) -> Any:
    return backends[runtime.environment.account][runtime.environment.region]


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def dump_tables(runtime: LocalRuntime) -> Iterator[dict[str, Any]]:
    tables = _backend(dynamodb_backends, runtime).tables
    for logical_id, name in sorted(runtime.topology.tables.items()):
        table = tables.get(name)
        if table is None:
            continue
        for item in table.all_items():
            yield {"table": logical_id, "item": item.to_json()["Attributes"]}


def restore_tables(runtime: LocalRuntime, rows: list[dict[str, Any]]) -> None:
    tables = _backend(dynamodb_backends, runtime).tables
    by_logical = runtime.topology.tables
    for row in rows:
        name = by_logical.get(row["table"])
        table = tables.get(name) if name else None
        if table is None:
            continue  # the template no longer has this table
        stream, table.stream_shard = table.stream_shard, None  # no stream record for old data
        try:
            table.put_item(row["item"])
        finally:
            table.stream_shard = stream


def _attributes_out(attributes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        value = dict(value)
        if isinstance(value.get("BinaryValue"), bytes):
            value["BinaryValue"] = {"b64": base64.b64encode(value["BinaryValue"]).decode()}
        out[name] = value
    return out


def _attributes_in(attributes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        value = dict(value)
        if isinstance(value.get("BinaryValue"), dict):
            value["BinaryValue"] = base64.b64decode(value["BinaryValue"]["b64"])
        out[name] = value
    return out


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def dump_queues(runtime: LocalRuntime) -> Iterator[dict[str, Any]]:
    queues = _backend(sqs_backends, runtime).queues
    for logical_id, url in sorted(runtime.topology.queues.items()):
        queue = queues.get(_queue_name(url))
        if queue is None:
            continue
        for message in list(queue._messages):
            yield {
                "queue": logical_id,
                "id": message.id,
                "body": message.body,
                "attributes": _attributes_out(message.message_attributes),
                "systemAttributes": message.system_attributes,
                "groupId": message.group_id,
                "deduplicationId": message.deduplication_id,
                # Seconds, not SQS's 13-digit milliseconds: a digit run that long can pass
                # the card-number check, and the state is scanned for card numbers too.
                "sentAt": _seconds(message.sent_timestamp),
                "receiveCount": message.approximate_receive_count,
                "firstReceivedAt": _seconds(message.approximate_first_receive_timestamp),
            }


def restore_queues(runtime: LocalRuntime, rows: list[dict[str, Any]]) -> None:
    backend = _backend(sqs_backends, runtime)
    for row in rows:
        url = runtime.topology.queues.get(row["queue"])
        if url is None or _queue_name(url) not in backend.queues:
            continue
        message = backend.send_message(
            _queue_name(url),
            row["body"],
            message_attributes=_attributes_in(row.get("attributes") or {}),
            delay_seconds=0,
            deduplication_id=row.get("deduplicationId"),
            group_id=row.get("groupId"),
            system_attributes=row.get("systemAttributes") or {},
        )
        # What a redrive and the dead-letter alarms look at: how often it was received, when.
        message.id = row["id"]
        if row.get("sentAt") is not None:
            message.sent_timestamp = int(float(row["sentAt"]) * 1000)
        message.approximate_receive_count = int(row.get("receiveCount") or 0)
        first = row.get("firstReceivedAt")
        message.approximate_first_receive_timestamp = (
            None if first is None else int(float(first) * 1000)
        )


def dump_archives(runtime: LocalRuntime) -> Iterator[dict[str, Any]]:
    for name, archive in sorted(_backend(events_backends, runtime).archives.items()):
        for event in archive.events:
            yield {"archive": name, "event": event}


def restore_archives(runtime: LocalRuntime, rows: list[dict[str, Any]]) -> None:
    archives = _backend(events_backends, runtime).archives
    for row in rows:
        archive = archives.get(row["archive"])
        if archive is not None:
            archive.events.append(row["event"])
