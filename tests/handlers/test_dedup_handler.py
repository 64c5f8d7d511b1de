from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from payment_posting_functions.domain.dedup import InMemoryFingerprintStore, Sighting
from payment_posting_functions.domain.dedup_store import DynamoDBFingerprintStore
from payment_posting_functions.domain.generator import Kind, Knobs, TransactionGenerator
from payment_posting_functions.domain.pan import contains_card_number
from payment_posting_functions.domain.transaction_table import TransactionTable
from payment_posting_functions.handlers import dedup
from tests.factories import TEST_PAN, valid_item
from tests.handlers.conftest import (
    QUARANTINE_TABLE,
    RETENTION_SECONDS,
    handler_output,
    metric_unit,
    metric_values,
    read_stream,
)

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def write(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    TransactionTable(boto3.resource("dynamodb").Table(table)).put_all(items)


def screen(dynamodb: Any, table: str, context: Any) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = dedup.handler(read_stream(dynamodb, table), context)
    return details


@pytest.mark.usefixtures("dedup_table")
def test_every_insert_becomes_one_event_with_its_verdict(
    dynamodb: Any, transactions_table: str, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with handler_output(dedup.logger, capsys) as output:
        _every_insert_becomes_one_event(dynamodb, transactions_table, lambda_context, output)


def _every_insert_becomes_one_event(
    dynamodb: Any, transactions_table: str, lambda_context: Any, output: Callable[[], str]
) -> None:
    knobs = Knobs(duplicate_rate=0.15, malformed_rate=0.1)
    records = list(TransactionGenerator(knobs=knobs, seed=11, start=START).generate(120))
    write(dynamodb, transactions_table, [r.item for r in records])

    details = screen(dynamodb, transactions_table, lambda_context)

    assert [d["transactionId"] for d in details] == [r.transaction_id for r in records]
    kinds = Counter(r.kind for r in records)
    assert kinds[Kind.DUPLICATE] > 5
    assert kinds[Kind.MALFORMED] > 5
    for record, detail in zip(records, details, strict=True):
        screening = detail["screening"]
        assert detail["name"] == "TransactionAuthorized"
        assert detail["schemaVersion"] == "1.0"
        if record.kind is Kind.MALFORMED:
            assert screening["valid"] is False
            assert screening["invalidReason"]
            assert detail["transaction"] is None  # its values may hold card data
            assert detail["origin"]["tableKey"] == {"transactionId": record.transaction_id}
        else:
            assert screening["valid"] is True
            assert screening["duplicateOf"] == record.duplicate_of
            assert detail["transaction"]["transactionId"] == record.transaction_id

    # The generator plants a clear test PAN in some malformed records: it must not leak.
    assert any(r.item["panToken"] == TEST_PAN for r in records)
    assert TEST_PAN not in json.dumps(details)
    logged = output()
    assert "screened a batch" in logged  # the log lines are really captured
    assert TEST_PAN not in logged


@pytest.mark.usefixtures("dedup_table")
def test_a_rerun_of_the_same_batch_gives_the_same_verdicts(
    dynamodb: Any, transactions_table: str, lambda_context: Any
) -> None:
    knobs = Knobs(duplicate_rate=0.3, malformed_rate=0.05)
    records = list(TransactionGenerator(knobs=knobs, seed=3, start=START).generate(60))
    write(dynamodb, transactions_table, [r.item for r in records])

    first = screen(dynamodb, transactions_table, lambda_context)
    again = screen(dynamodb, transactions_table, lambda_context)

    assert [d["screening"] for d in again] == [d["screening"] for d in first]
    assert all(d["screening"]["duplicateOf"] != d["transactionId"] for d in again)


@pytest.mark.usefixtures("dedup_table")
def test_a_retransmission_is_flagged_with_the_first_id(
    dynamodb: Any, transactions_table: str, lambda_context: Any
) -> None:
    original = valid_item(transactionId="first-0000001")
    retry = valid_item(
        transactionId="retry-0000002", authCode="ZZ9999", transmittedAt="2026-11-24T10:16:00Z"
    )
    write(dynamodb, transactions_table, [original])
    write(dynamodb, transactions_table, [retry])

    details = {d["transactionId"]: d for d in screen(dynamodb, transactions_table, lambda_context)}

    assert details["first-0000001"]["screening"]["duplicate"] is False
    assert details["retry-0000002"]["screening"]["duplicate"] is True
    assert details["retry-0000002"]["screening"]["duplicateOf"] == "first-0000001"


@pytest.mark.usefixtures("dedup_table")
def test_modify_and_remove_records_start_no_lifecycle(
    dynamodb: Any, transactions_table: str, lambda_context: Any
) -> None:
    write(dynamodb, transactions_table, [valid_item()])
    table = boto3.resource("dynamodb").Table(transactions_table)
    table.update_item(
        Key={"transactionId": valid_item()["transactionId"]},
        UpdateExpression="SET mcc = :m",
        ExpressionAttributeValues={":m": "5812"},
    )
    table.delete_item(Key={"transactionId": valid_item()["transactionId"]})
    records = read_stream(dynamodb, transactions_table)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]

    details = dedup.handler(records, lambda_context)

    assert len(details) == 1


@pytest.mark.usefixtures("dedup_table")
def test_a_record_without_new_image_is_flagged_invalid_not_dropped(
    dynamodb: Any, transactions_table: str, lambda_context: Any
) -> None:
    write(dynamodb, transactions_table, [valid_item()])
    records = read_stream(dynamodb, transactions_table)
    del records[0]["dynamodb"]["NewImage"]  # a KEYS_ONLY stream

    [detail] = dedup.handler(records, lambda_context)

    assert detail["screening"]["valid"] is False
    assert detail["screening"]["invalidReason"] == dedup.NO_IMAGE_REASON
    assert detail["transactionId"] == valid_item()["transactionId"]


# Powertools warns that a failed invocation published no metrics; that is expected here.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_store_failure_fails_the_batch_so_pipes_retries_it(
    dynamodb: Any,
    transactions_table: str,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEDUP_TABLE_NAME", "missing-table")
    monkeypatch.setenv("DEDUP_WINDOW_SECONDS", "3600")
    dedup.screener.cache_clear()
    write(dynamodb, transactions_table, [valid_item()])

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        screen(dynamodb, transactions_table, lambda_context)


WINDOW_MS = 10_000
sightings = st.lists(
    st.tuples(
        st.sampled_from(["fp-1", "fp-2"]),
        st.sampled_from([f"tx-{n:05d}" for n in range(6)]),
        st.integers(min_value=0, max_value=4 * WINDOW_MS),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=sightings)
def test_dynamodb_store_gives_the_verdicts_of_the_reference_semantics(
    batch: list[tuple[str, str, int]],
) -> None:
    # Same sequence, re-runs included, through both stores: the conditional writes must
    # express exactly the rules in domain.dedup, window edges and take-overs included.
    records: dict[str, tuple[str, int]] = {}
    for fp, tx, at in batch:
        records.setdefault(tx, (fp, at))
    sequence = [(records[tx][0], tx, records[tx][1]) for _, tx, _ in batch] * 2
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="dedup",
            KeySchema=[{"AttributeName": "fingerprint", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "fingerprint", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        real = DynamoDBFingerprintStore(client, "dedup")
        reference = InMemoryFingerprintStore()
        for fp, tx, at in sequence:
            expected = reference.screen(fp, Sighting(tx, at), WINDOW_MS)
            assert real.screen(fp, Sighting(tx, at), WINDOW_MS) == expected


def test_dynamodb_store_window_edges_and_ttl(dedup_table: str, dynamodb: Any) -> None:
    store = DynamoDBFingerprintStore(dynamodb, dedup_table)
    store.screen("f", Sighting("owner-001", 0), WINDOW_MS)
    store.screen("g", Sighting("owner-002", 0), WINDOW_MS)

    assert store.screen("f", Sighting("edge-0001", WINDOW_MS), WINDOW_MS).duplicate_of == (
        "owner-001"
    )
    assert store.screen("g", Sighting("late-0001", WINDOW_MS + 1), WINDOW_MS).duplicate_of is None
    item = dynamodb.get_item(TableName=dedup_table, Key={"fingerprint": {"S": "g"}})["Item"]
    # TTL only after the window and a day's slack for re-runs have passed.
    assert int(item["expiresAt"]["N"]) == (2 * WINDOW_MS + 1 + 86_400_000) // 1000


def _quarantined(dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.resource("dynamodb").Table(QUARANTINE_TABLE).scan()["Items"]
    return items


def _left_in(table: str) -> set[str]:
    items = boto3.resource("dynamodb").Table(table).scan()["Items"]
    return {str(item["transactionId"]) for item in items}


@pytest.mark.usefixtures("dedup_table")
def test_a_refused_record_is_quarantined_without_the_refused_values(
    dynamodb: Any, transactions_table: str, lambda_context: Any
) -> None:
    bad = valid_item(transactionId="tx-bad-0001", panToken=f"tok_{TEST_PAN}", mcc="54A1")
    write(dynamodb, transactions_table, [bad, valid_item(transactionId="tx-good-0001")])

    before = int(datetime.now(UTC).timestamp())
    screen(dynamodb, transactions_table, lambda_context)

    [kept] = _quarantined(dynamodb)
    assert kept["transactionId"] == "tx-bad-0001"
    assert kept["refusedFields"] == ["mcc", "panToken"]
    assert {"panToken", "mcc"} <= set(kept["reason"].replace(":", " ").split())
    assert {"panToken", "mcc"}.isdisjoint(kept["record"])
    assert kept["record"]["stan"] == bad["stan"]  # what passed is kept, to correct and resend
    assert before + RETENTION_SECONDS <= int(kept["expiresAt"]) <= before + RETENTION_SECONDS + 60
    assert not contains_card_number(json.dumps(kept, default=str))
    # Gone from the table the pipe reads; the good record stays.
    assert _left_in(transactions_table) == {"tx-good-0001"}


@pytest.mark.usefixtures("dedup_table")
@pytest.mark.parametrize("key", [TEST_PAN, f"tx_{TEST_PAN}", f"{TEST_PAN}-0001"])
def test_a_card_number_in_the_key_is_redacted_at_the_source(
    dynamodb: Any, transactions_table: str, lambda_context: Any, key: str
) -> None:
    write(dynamodb, transactions_table, [valid_item(transactionId=key)])
    [record] = read_stream(dynamodb, transactions_table)
    sequence = record["dynamodb"]["SequenceNumber"]

    [detail] = dedup.handler([record], lambda_context)
    again = dedup.handler([record], lambda_context)  # Pipes retries whole batches

    assert detail["transactionId"] == f"redacted-key-{sequence}"
    assert detail["origin"]["tableKey"] == {"transactionId": f"redacted-key-{sequence}"}
    assert [{**d, "occurredAt": None} for d in again] == [{**detail, "occurredAt": None}]
    assert not contains_card_number(json.dumps(detail))
    [kept] = _quarantined(dynamodb)
    assert kept["transactionId"] == f"redacted-key-{sequence}"
    assert kept["refusedFields"] == ["transactionId"]
    assert not contains_card_number(json.dumps(kept, default=str))
    assert _left_in(transactions_table) == set()


@pytest.mark.usefixtures("dedup_table")
def test_an_expiry_set_by_the_writer_is_storage_not_a_refused_field(
    dynamodb: Any, transactions_table: str, lambda_context: Any
) -> None:
    write(dynamodb, transactions_table, [{**valid_item(), "expiresAt": 1_900_000_000}])

    [detail] = screen(dynamodb, transactions_table, lambda_context)

    assert detail["screening"]["valid"] is True
    assert _quarantined(dynamodb) == []


@pytest.mark.usefixtures("dedup_table")
def test_a_batch_records_how_far_behind_the_table_its_oldest_record_is(
    dynamodb: Any, transactions_table: str, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    write(dynamodb, transactions_table, [valid_item(), valid_item(transactionId="tx-later-01")])
    records = read_stream(dynamodb, transactions_table)
    now = time.time()
    # Written 42 s and 3 s ago: the lag is the oldest's.
    records[0]["dynamodb"]["ApproximateCreationDateTime"] = now - 42
    records[1]["dynamodb"]["ApproximateCreationDateTime"] = now - 3

    with handler_output(dedup.logger, capsys) as output:
        dedup.handler(records, lambda_context)
        text = output()

    [lag] = metric_values(text, "IngestLag")
    assert 42 <= lag < 42 + 60
    assert metric_unit(text, "IngestLag") == "Seconds"
