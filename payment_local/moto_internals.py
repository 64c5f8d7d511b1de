"""Every place the local runtime reaches past moto's public API. Pinned to the moto version.

Three things, all for speed, all measured (see ``make bench``):

- a patch: moto delivers an event to an SQS rule target by rendering it through its input
  template parser, which parses eight JSONPath expressions per event with a PLY parser built
  from scratch each time (about 9 ms per delivered event, the biggest item in a profile of a
  run). Parsed expressions are immutable, so caching the parse changes nothing but the speed;
- a patch: on every message received, moto checks the retention period by computing all the
  queue's attributes three times over, message counts included, so a receive costs grows with
  the queue's depth (about 3 ms per message at a depth of a few hundred). The check now reads
  the one attribute it needs; the result is the same;
- a read: the pipe poller takes stream records from moto's DynamoDB Streams backend rather than
  through ``GetRecords``, whose response moto serializes field by field (about 7 ms per record
  with the transaction images, more than the rest of the record's journey).

Functions under test keep using boto3 against moto as they would use AWS.
"""

from __future__ import annotations

import copy
import functools
from datetime import UTC, datetime
from typing import Any

import jsonpath_ng.ext
import moto
from moto.core.utils import unix_time
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.sqs.models import Message, SQSBackend

PINNED_MOTO_VERSION = "5.2.5"
_patched = False


class MotoVersionError(RuntimeError):
    """moto is not the version this module was written and tested against."""


def check_version() -> None:
    if moto.__version__ != PINNED_MOTO_VERSION:
        raise MotoVersionError(
            f"payment_local.moto_internals is written for moto {PINNED_MOTO_VERSION}, found "
            f"{moto.__version__}: re-check this module and its tests, then update the pin"
        )


def apply_patches() -> None:
    """Apply every patch once; refuse another moto version rather than patch it blindly."""
    global _patched
    check_version()
    if _patched:
        return
    # moto.events.utils imports `parse` from jsonpath_ng.ext inside the function, on every
    # call, so replacing the module attribute reaches it.
    jsonpath_ext: Any = jsonpath_ng.ext
    jsonpath_ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ext.parse)
    backend_class: Any = SQSBackend
    backend_class.is_message_valid_based_on_retention_period = _within_retention
    _patched = True


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    queue: Any = backend.get_queue(queue_name)
    sent_ms: Any = message.sent_timestamp
    return bool(queue.message_retention_period + sent_ms / 1000 > unix_time())


def get_stream_records(
    account: str, region: str, shard_iterator: str, limit: int
) -> tuple[str, list[dict[str, Any]]]:
    """(next iterator, records) as ``GetRecords`` would return them, records copied.

    ``ApproximateCreationDateTime`` becomes epoch seconds, as Lambda and Pipes deliver it.
    """
    check_version()
    backend = dynamodbstreams_backends[account][region]
    result = backend.get_records(shard_iterator, limit)
    records = []
    for stored in result["Records"]:
        record = copy.deepcopy(stored)  # moto keeps these; the pipe adds fields to its copy
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            aware = created if created.tzinfo else created.replace(tzinfo=UTC)
            record["dynamodb"]["ApproximateCreationDateTime"] = aware.timestamp()
        record["awsRegion"] = region
        records.append(record)
    return result["NextShardIterator"], records
