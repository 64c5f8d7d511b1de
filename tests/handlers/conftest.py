"""moto-backed fixtures for handler tests: real tables, a real stream, no AWS."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payment_posting_functions.domain.log_redaction import StandardOutput

TRANSACTIONS_TABLE = "transactions"
BUS = "payments"
DEDUP_TABLE = "dedup"
QUARANTINE_TABLE = "quarantine"
RETENTION_SECONDS = 7 * 24 * 3600


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture
def dedup_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    dynamodb.create_table(
        TableName=DEDUP_TABLE,
        KeySchema=[{"AttributeName": "fingerprint", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "fingerprint", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Screening also quarantines: the quarantine table comes with the dedup store.
    dynamodb.create_table(
        TableName=QUARANTINE_TABLE,
        KeySchema=[
            {"AttributeName": "transactionId", "KeyType": "HASH"},
            {"AttributeName": "sequenceNumber", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "transactionId", "AttributeType": "S"},
            {"AttributeName": "sequenceNumber", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("DEDUP_TABLE_NAME", DEDUP_TABLE)
    monkeypatch.setenv("DEDUP_WINDOW_SECONDS", "3600")
    monkeypatch.setenv("QUARANTINE_TABLE_NAME", QUARANTINE_TABLE)
    monkeypatch.setenv("RETENTION_SECONDS", str(RETENTION_SECONDS))
    from payment_posting_functions.handlers import dedup

    # The handler caches its stores per process, as Lambda does.
    dedup.screener.cache_clear()
    dedup.quarantine.cache_clear()
    dedup.transactions.cache_clear()
    return DEDUP_TABLE


@pytest.fixture
def transactions_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    dynamodb.create_table(
        TableName=TRANSACTIONS_TABLE,
        KeySchema=[{"AttributeName": "transactionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "transactionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    monkeypatch.setenv("TRANSACTIONS_TABLE_NAME", TRANSACTIONS_TABLE)
    monkeypatch.setenv("RETENTION_SECONDS", str(RETENTION_SECONDS))
    from payment_posting_functions.handlers import source

    # Cold start: the handler caches its tables per process (an earlier test's run of the
    # stack may have filled them with tables that are gone).
    source.transaction_table.cache_clear()
    source.account_table.cache_clear()
    return TRANSACTIONS_TABLE


def read_stream(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every record on the table's stream, shaped exactly as Pipes hands them to enrichment."""
    streams = boto3.client("dynamodbstreams")
    stream_arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        response = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in response["Records"]:
            record["eventSourceARN"] = stream_arn
            record["dynamodb"]["ApproximateCreationDateTime"] = record["dynamodb"][
                "ApproximateCreationDateTime"
            ].timestamp()
            records.append(record)
    return records


@contextmanager
def handler_output(logger: Any, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything a handler writes to stdout (logs and metrics), as Lambda would ship it at
    DEBUG.

    The payment logger writes to standard output as it is at each line (``StandardOutput``);
    the stream is set again here for a logger some other code made first for the service.
    """
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    original, level = handler.stream, logger.log_level
    handler.setStream(StandardOutput())
    # Every line, DEBUG too: what a stage at DEBUG would ship must hold no card number either.
    logger.setLevel(logging.DEBUG)
    try:
        yield lambda: capsys.readouterr().out
    finally:
        handler.setStream(original)
        logger.setLevel(level)


@pytest.fixture
def tap(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The payments bus with a catch-all rule into a queue; returns the queue URL.

    What a handler publishes is read back from the queue, as a subscriber would see it.
    """
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    url: str = sqs.create_queue(QueueName="tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": ""}]})
    )
    events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    return url


def metric_values(output: str, name: str) -> list[float]:
    """The values of metric ``name`` in the Powertools EMF lines of ``output``, in order."""
    values: list[float] = []
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        declared = {
            metric["Name"]
            for directive in blob["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        }
        if name in declared:
            value = blob[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


def metric_unit(output: str, name: str) -> str | None:
    """The unit ``name`` is declared with in the EMF lines of ``output``."""
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    if metric["Name"] == name:
                        return str(metric.get("Unit"))
    return None
