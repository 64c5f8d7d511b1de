"""EventBridge Pipes, which moto defines but does not run: a DynamoDB stream to an event bus.

What a pipe does, as documented for a DynamoDB stream source: read records in order, keep
those matching the filter, group them into batches of ``BatchSize``, call the enrichment
function with the batch (a JSON list), put one event per element it returns on the target
bus, and on failure retry the whole batch (enrichment included) up to
``MaximumRetryAttempts``, splitting it in halves first with ``AUTOMATIC_BISECT``, before
sending a failure record to the dead-letter queue.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from payment_local.access.authorizer import AccessDenied, Authorizer
from payment_local.access.calls import Check, checks_for_call, pipe_definition_checks
from payment_local.access.policy import Caller
from payment_local.functions import FunctionError, LocalFunction
from payment_local.moto_internals import get_stream_records

PUT_EVENTS_LIMIT = 10


@dataclass
class PipeStats:
    records_read: int = 0
    records_filtered_out: int = 0
    events_published: int = 0
    batch_failures: int = 0
    batches_dead_lettered: int = 0
    dead_letters_refused: int = 0  # the dead-letter queue refused the failure record
    reads_refused: int = 0


@dataclass
class _Batch:
    records: list[dict[str, Any]]
    attempts: int = 0


@dataclass
class StreamPipe:
    """One ``AWS::Pipes::Pipe`` with a DynamoDB stream source and an event bus target."""

    name: str
    stream_arn: str
    bus_name: str
    source: str | None
    detail_type: str | None
    batch_size: int
    maximum_retry_attempts: int
    bisect: bool
    starting_position: str
    filters: list[EventPattern]
    enrichment: LocalFunction | None
    dead_letter_queue_url: str | None
    clients: Any
    account: str
    region: str
    stats: PipeStats = field(default_factory=PipeStats)
    _iterators: dict[str, str] = field(default_factory=dict)
    _pending: deque[_Batch] = field(default_factory=deque)
    _buffer: list[dict[str, Any]] = field(default_factory=list)
    access: Authorizer | None = None
    role: Caller | None = None
    arn: str = ""
    role_arn: str | None = None

    def run_as(self, access: Authorizer, role: Caller, clients: Any) -> None:
        """Read, invoke, publish and dead-letter as the pipe's role, as Pipes does."""
        self.access, self.role, self.clients = access, role, clients

    def _refused(self, checks: list[Check]) -> AccessDenied | None:
        if self.access is None or self.role is None:
            return None
        return self.access.check(self.role, checks)

    def poll(self) -> int:
        """Read what the stream has, deliver ready batches; return how much work was done."""
        work = self._read()
        # No batching window: whatever is there goes now, in batches of at most BatchSize.
        for start in range(0, len(self._buffer), self.batch_size):
            self._pending.append(_Batch(self._buffer[start : start + self.batch_size]))
        self._buffer.clear()
        while self._pending:
            self._deliver(self._pending.popleft())
            work += 1
        return work

    def redeliver(self, records: list[dict[str, Any]]) -> None:
        """Take ``records`` (stream records, as the stream would give them) as if just read:
        what a redrive of the pipe's dead-letter queue re-reads from the table."""
        for start in range(0, len(records), self.batch_size):
            self._pending.append(_Batch(records[start : start + self.batch_size]))

    def start(self) -> None:
        """Take the shard iterators now: LATEST means from when the pipe starts, not polls."""
        streams = self.clients.dynamodbstreams
        if not self._iterators:
            shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            for shard in shards["Shards"]:
                self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType=self.starting_position,
                )["ShardIterator"]

    def _read(self) -> int:
        try:
            self.start()
        except ClientError:
            self.stats.reads_refused += 1  # the role may not read the stream: nothing moves
            return 0
        if self._refused(self._read_checks()):
            self.stats.reads_refused += 1
            return 0
        read = 0
        for shard_id, iterator in list(self._iterators.items()):
            self._iterators[shard_id], records = get_stream_records(
                self.account, self.region, iterator, 1000
            )
            for record in records:
                read += 1
                record["eventSourceARN"] = self.stream_arn
                if self._passes_filters(record):
                    self._buffer.append(record)
                else:
                    self.stats.records_filtered_out += 1
        self.stats.records_read += read
        return read

    def _read_checks(self) -> list[Check]:
        if self.access is None:
            return []
        # GetRecords on the stream, and the table key's Decrypt that reading it needs; the
        # pipe's own key, to read the filter the records are matched against.
        model = self.access.model
        return [
            *checks_for_call(model, "dynamodb", "GetRecords", {"StreamArn": self.stream_arn}),
            *pipe_definition_checks(model, self.arn),
        ]

    def _passes_filters(self, record: dict[str, Any]) -> bool:
        # A record passes when any one filter matches (no filters: every record).
        return not self.filters or any(f.matches_event(cast(Any, record)) for f in self.filters)

    def _deliver(self, batch: _Batch) -> None:
        try:
            items = self._enrich(batch.records)
            self._put_events(items)
        except (FunctionError, _TargetError, ClientError):
            self.stats.batch_failures += 1
            # Retries go first, so records keep their stream order; splitting a batch does
            # not count against the retries of its halves.
            if self.bisect and len(batch.records) > 1:
                middle = len(batch.records) // 2
                self._pending.extendleft(
                    [_Batch(batch.records[middle:]), _Batch(batch.records[:middle])]
                )
                return
            batch.attempts += 1
            if batch.attempts <= self.maximum_retry_attempts:
                self._pending.appendleft(batch)
            else:
                self._dead_letter(batch)

    def _enrich(self, records: list[dict[str, Any]]) -> list[Any]:
        if self.enrichment is None:
            return records
        refused = self._refused([Check("lambda:InvokeFunction", self.enrichment.arn)])
        if refused:
            raise _TargetError(str(refused))
        result = self.enrichment.invoke(records)
        return result if isinstance(result, list) else [result]

    def _put_events(self, items: list[Any]) -> None:
        # Pipes publishes the whole enriched batch; a partial failure fails the batch, and the
        # retry publishes it again (downstream is idempotent for that reason).
        for start in range(0, len(items), PUT_EVENTS_LIMIT):
            chunk = items[start : start + PUT_EVENTS_LIMIT]
            response = self.clients.events.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": self.source or "Pipe " + self.name,
                        "DetailType": self.detail_type or "Event from aws:dynamodb",
                        "Detail": json.dumps(item),
                    }
                    for item in chunk
                ]
            )
            if response.get("FailedEntryCount"):
                raise _TargetError(f"{response['FailedEntryCount']} entries failed")
            self.stats.events_published += len(chunk)

    def _dead_letter(self, batch: _Batch) -> None:
        self.stats.batches_dead_lettered += 1
        if self.dead_letter_queue_url is None:
            return
        try:
            self._send_dead_letter(batch)
        except ClientError:
            # Nowhere to put the failure record: the records stay unpublished, and the run
            # reports them (and the refusal) instead of losing them silently.
            self.stats.dead_letters_refused += 1

    def _send_dead_letter(self, batch: _Batch) -> None:
        # Like Pipes, the message locates the records in the stream; it does not copy them.
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in batch.records]
        sequence_numbers.sort(key=int)  # numeric strings of any width
        # When the records were written: the window a redrive re-reads from the table once
        # the stream no longer has them (24 hours on AWS; at once here after a restore).
        arrivals = sorted(
            float(r["dynamodb"].get("ApproximateCreationDateTime") or time.time())
            for r in batch.records
        )
        self.clients.sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=json.dumps(
                {
                    "context": {"pipeName": self.name, "attempts": batch.attempts},
                    "streamArn": self.stream_arn,
                    "startSequenceNumber": sequence_numbers[0],
                    "endSequenceNumber": sequence_numbers[-1],
                    "batchSize": len(batch.records),
                    "approximateArrivalOfFirstRecord": arrivals[0],
                    "approximateArrivalOfLastRecord": arrivals[-1],
                    "failedAt": time.time(),
                }
            ),
        )


class _TargetError(Exception):
    """The target refused part of a batch."""
