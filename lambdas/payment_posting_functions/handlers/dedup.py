"""Pipe enrichment: screen a batch of stream records into ``TransactionAuthorized`` details.

A record that fails validation is quarantined here, at the one place its raw values are seen:
kept without the refused values in the quarantine table and removed from the transactions
table, before its event (which carries no values) goes on.

EventBridge Pipes sends the batch as a JSON list of DynamoDB stream records and puts one event
on the bus per element of the list returned. Every INSERT yields exactly one element, valid or
not, so nothing written to the table is lost; an exception fails the batch and Pipes retries it
(which is why screening is idempotent).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from payment_posting_functions.domain.latency import oldest_age_seconds
from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.handlers.tracing import capture_lambda_handler

# The domain (its pydantic models) and Powertools' stream record classes are imported where
# they are used, on the first invocation, not here:
# docs/adr/0024-lazy-imports-on-the-payment-path.md.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from payment_posting_functions.domain.quarantine import QuarantineStore
    from payment_posting_functions.domain.screening import InvalidRecord, Screener
    from payment_posting_functions.domain.transaction import AuthorizedTransaction
    from payment_posting_functions.domain.transaction_table import TransactionTable

logger = payment_logger()
metrics = Metrics()

NO_IMAGE_REASON = "stream record has no new image: the table stream must include NEW_IMAGE"


@cache
def screener() -> Screener:
    """Built on first use, not at import, so configuration errors surface as invocation errors."""
    from payment_posting_functions.domain.dedup_store import DynamoDBFingerprintStore
    from payment_posting_functions.domain.screening import Screener

    store = DynamoDBFingerprintStore(boto3.client("dynamodb"), os.environ["DEDUP_TABLE_NAME"])
    return Screener(store, timedelta(seconds=int(os.environ["DEDUP_WINDOW_SECONDS"])))


@cache
def quarantine() -> QuarantineStore:
    from payment_posting_functions.domain.quarantine import QuarantineStore

    table = boto3.resource("dynamodb").Table(os.environ["QUARANTINE_TABLE_NAME"])
    return QuarantineStore(table, timedelta(seconds=int(os.environ["RETENTION_SECONDS"])))


@cache
def transactions() -> TransactionTable:
    from payment_posting_functions.domain.transaction_table import TransactionTable

    return TransactionTable(boto3.resource("dynamodb").Table(os.environ["TRANSACTIONS_TABLE_NAME"]))


def _parse(record: DynamoDBRecord) -> AuthorizedTransaction | InvalidRecord:
    from payment_posting_functions.domain.screening import (
        InvalidRecord,
        parse_record,
        record_id,
        stream_position,
    )
    from payment_posting_functions.domain.transaction import AuthorizedTransaction

    stream = record.dynamodb
    raw_keys = (stream.keys if stream else None) or {}
    keys = {name: str(value) for name, value in raw_keys.items()}
    # Redacted here, at the source: nothing downstream sees the raw key.
    origin = stream_position(keys, stream.sequence_number if stream else None)
    image = stream.new_image if stream else None
    parsed = parse_record(image, origin) if image else None
    if isinstance(parsed, AuthorizedTransaction):
        return parsed
    invalid = parsed or InvalidRecord(record_id(origin), NO_IMAGE_REASON, origin)
    _quarantine(invalid, raw_keys)
    return invalid


def _quarantine(invalid: InvalidRecord, raw_keys: dict[str, Any]) -> None:
    """Keep the record without what was refused, then take it out of the transactions table.

    In that order: a failure between the two leaves the record in both places, and the retry
    of the batch writes the same quarantine item again and deletes the original.
    """
    quarantine().keep(
        transaction_id=invalid.transaction_id,
        sequence_number=invalid.origin.sequence_number,
        reason=invalid.reason,
        refused_fields=invalid.refused_fields,
        kept=invalid.kept,
    )
    if raw_keys:
        transactions().delete(raw_keys)


def record_ingest_lag(event: list[dict[str, Any]]) -> None:
    """Seconds from the oldest record's write (its ApproximateCreationDateTime) to now: how
    far behind the table the pipe reads. Pipes publishes no iterator age for a DynamoDB
    stream, so this is it (docs/adr/0020-alarms-and-dashboards-by-default.md)."""
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
    )

    created = (DynamoDBRecord(raw).dynamodb for raw in event)
    lag = oldest_age_seconds(
        (stream.approximate_creation_date_time if stream else None for stream in created),
        time.time(),
    )
    if lag is not None:
        metrics.add_metric(name="IngestLag", unit=MetricUnit.Seconds, value=lag)


@logger.inject_lambda_context(log_event=False)  # records hold card data: never log the event
@capture_lambda_handler
@metrics.log_metrics
def handler(event: list[dict[str, Any]], context: LambdaContext) -> list[dict[str, Any]]:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecord,
        DynamoDBRecordEventName,
    )

    details: list[dict[str, Any]] = []
    duplicates = invalid = 0
    record_ingest_lag(event)
    for raw in event:
        record = DynamoDBRecord(raw)
        if record.event_name is not DynamoDBRecordEventName.INSERT:
            # The pipe filters to INSERT; a MODIFY or REMOVE is not a new transaction, and
            # emitting it would give a transaction a second lifecycle.
            logger.warning(
                "skipped a stream record that is not an INSERT",
                extra={"eventName": raw.get("eventName"), "eventID": raw.get("eventID")},
            )
            continue
        parsed = _parse(record)
        event_out = screener().screen(parsed)
        duplicates += event_out.screening.duplicate
        invalid += not event_out.screening.valid
        details.append(event_out.to_detail())
    metrics.add_metric(name="RecordsScreened", unit=MetricUnit.Count, value=len(details))
    metrics.add_metric(name="DuplicatesFlagged", unit=MetricUnit.Count, value=duplicates)
    metrics.add_metric(name="InvalidRecords", unit=MetricUnit.Count, value=invalid)
    # DEBUG: the metrics above count the same at every level; a line per batch is a line
    # per record when batches are small.
    logger.debug(
        "screened a batch",
        extra={"records": len(details), "duplicates": duplicates, "invalid": invalid},
    )
    return details
