"""The DynamoDB stream -> event bus pipe: filter, batches, enrichment, retries, bisect, DLQ."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from payment_local import moto_internals
from payment_local.clients import AwsClients
from payment_local.pipes import StreamPipe
from payment_posting_functions.domain.event_names import EventName, EventSource
from tests.local import fixture_handlers
from tests.local.fixture_handlers import CALLS, POISON
from tests.local.support import ACCOUNT, REGION, create_queue, drain, drain_bodies, make_function

TABLE = "transactions"
BUS = "payments"
SOURCE = EventSource.INGEST.value
DETAIL_TYPE = EventName.TRANSACTION_AUTHORIZED.value
INSERTS_ONLY = '{"eventName":["INSERT"]}'


@dataclass
class Setup:
    clients: AwsClients
    stream_arn: str
    published_url: str
    dlq_url: str

    def put(self, key: str, n: int = 0) -> None:
        self.clients.dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "n": {"N": str(n)}})

    def pipe(
        self,
        *,
        enrichment: str | None = "enrich",
        batch_size: int = 10,
        retries: int = 3,
        bisect: bool = False,
        filters: tuple[str, ...] = (INSERTS_ONLY,),
        dead_letter: bool = True,
    ) -> StreamPipe:
        return StreamPipe(
            name="ingest",
            stream_arn=self.stream_arn,
            bus_name=BUS,
            source=SOURCE,
            detail_type=DETAIL_TYPE,
            batch_size=batch_size,
            maximum_retry_attempts=retries,
            bisect=bisect,
            starting_position="TRIM_HORIZON",
            filters=[EventPattern.load(pattern) for pattern in filters],
            enrichment=make_function(enrichment) if enrichment else None,
            dead_letter_queue_url=self.dlq_url if dead_letter else None,
            clients=self.clients,
            account=ACCOUNT,
            region=REGION,
        )

    def published(self) -> list[dict[str, Any]]:
        return drain_bodies(self.clients, self.published_url)


@pytest.fixture
def setup() -> Iterator[Setup]:
    moto_internals.apply_patches()
    with mock_aws():
        clients = AwsClients(REGION)
        table = clients.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        clients.events.create_event_bus(Name=BUS)
        published_url, published_arn = create_queue(clients, "published")
        clients.events.put_rule(
            Name="everything", EventBusName=BUS, EventPattern='{"source":[{"prefix":""}]}'
        )
        clients.events.put_targets(
            Rule="everything", EventBusName=BUS, Targets=[{"Id": "q", "Arn": published_arn}]
        )
        dlq_url, _ = create_queue(clients, "pipe-dlq")
        yield Setup(clients, table["LatestStreamArn"], published_url, dlq_url)


def _run(pipe: StreamPipe) -> None:
    for _ in range(50):
        if pipe.poll() == 0:
            return
    raise AssertionError("the pipe never went idle")


def _keys(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail"]["key"] for event in events]


def test_only_inserts_pass_the_filter(setup: Setup) -> None:
    for n in range(3):
        setup.put(f"k{n}", n)
    setup.put("k1", 10)  # MODIFY
    pipe = setup.pipe()

    _run(pipe)

    events = setup.published()
    assert sorted(_keys(events)) == ["k0", "k1", "k2"]
    assert {event["detail"]["n"] for event in events} == {0, 1, 2}
    assert pipe.stats.records_read == 4
    assert pipe.stats.records_filtered_out == 1
    assert pipe.stats.events_published == 3
    assert [len(batch) for batch in CALLS["enrich"]] == [3]


def test_records_go_to_the_enrichment_in_batches(setup: Setup) -> None:
    for n in range(25):
        setup.put(f"k{n:02}", n)
    pipe = setup.pipe(batch_size=10)

    _run(pipe)

    assert [len(batch) for batch in CALLS["enrich"]] == [10, 10, 5]
    first = CALLS["enrich"][0][0]  # a stream record, as Pipes hands it over
    assert first["eventName"] == "INSERT"
    assert first["eventSource"] == "aws:dynamodb"
    assert first["eventSourceARN"] == setup.stream_arn
    assert first["awsRegion"] == REGION
    assert first["dynamodb"]["Keys"] == {"pk": {"S": "k00"}}
    assert first["dynamodb"]["NewImage"] == {"pk": {"S": "k00"}, "n": {"N": "0"}}
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], float)
    events = setup.published()
    assert sorted(_keys(events)) == [f"k{n:02}" for n in range(25)]


def test_each_enriched_element_becomes_one_event(setup: Setup) -> None:
    setup.put("a", 1)
    setup.put("b", 2)
    pipe = setup.pipe()

    _run(pipe)

    events = setup.published()
    assert sorted((e["source"], e["detail-type"], json.dumps(e["detail"])) for e in events) == [
        (SOURCE, DETAIL_TYPE, json.dumps({"key": "a", "n": 1})),
        (SOURCE, DETAIL_TYPE, json.dumps({"key": "b", "n": 2})),
    ]


def test_an_enrichment_returning_one_object_publishes_one_event(setup: Setup) -> None:
    for key in ("a", "b", "c"):
        setup.put(key)
    pipe = setup.pipe(enrichment="enrich_to_one")

    _run(pipe)

    assert [event["detail"] for event in setup.published()] == [{"keys": ["a", "b", "c"]}]


def test_a_failed_enrichment_is_retried_without_loss_or_duplicates(setup: Setup) -> None:
    fixture_handlers.FAILURES_LEFT["enrich"] = 1
    for n in range(5):
        setup.put(f"k{n}", n)
    pipe = setup.pipe(retries=3)

    _run(pipe)

    assert [len(batch) for batch in CALLS["enrich"]] == [5, 5]  # the same batch, re-run
    assert sorted(_keys(setup.published())) == [f"k{n}" for n in range(5)]
    assert pipe.stats.batch_failures == 1
    assert pipe.stats.batches_dead_lettered == 0
    assert drain(setup.clients, setup.dlq_url) == []


def test_a_batch_failing_every_time_is_dead_lettered_after_the_retries(setup: Setup) -> None:
    fixture_handlers.FAILURES_LEFT["enrich"] = 100
    for n in range(3):
        setup.put(f"k{n}", n)
    pipe = setup.pipe(retries=2)

    _run(pipe)

    assert len(CALLS["enrich"]) == 3  # one attempt and two retries
    assert setup.published() == []
    (message,) = drain_bodies(setup.clients, setup.dlq_url)
    assert message["batchSize"] == 3
    assert message["streamArn"] == setup.stream_arn


def test_bisect_isolates_the_poison_record(setup: Setup) -> None:
    keys = [f"k{n}" for n in range(9)]
    keys.insert(3, POISON)
    for key in keys:
        setup.put(key)
    iterator = _trim_horizon_iterator(setup)
    _, records = moto_internals.get_stream_records(ACCOUNT, REGION, iterator, 100)
    poison_sequence = next(
        r["dynamodb"]["SequenceNumber"]
        for r in records
        if r["dynamodb"]["Keys"]["pk"]["S"] == POISON
    )
    pipe = setup.pipe(batch_size=10, retries=3, bisect=True)

    _run(pipe)

    assert sorted(_keys(setup.published())) == sorted(k for k in keys if k != POISON)
    (message,) = drain_bodies(setup.clients, setup.dlq_url)
    assert message["streamArn"] == setup.stream_arn
    assert message["startSequenceNumber"] == poison_sequence
    assert message["endSequenceNumber"] == poison_sequence
    assert message["batchSize"] == 1
    assert pipe.stats.batches_dead_lettered == 1
    # Bisecting got down to the poison record on its own.
    batches = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in batch] for batch in CALLS["enrich"]]
    assert batches[0] == keys
    assert [POISON] in batches


def test_without_a_dlq_a_failed_batch_is_counted_and_dropped(setup: Setup) -> None:
    setup.put(POISON)
    pipe = setup.pipe(retries=1, dead_letter=False)

    _run(pipe)

    assert len(CALLS["enrich"]) == 2
    assert pipe.stats.batches_dead_lettered == 1
    assert setup.published() == []
    assert drain(setup.clients, setup.dlq_url) == []


def test_without_enrichment_the_raw_records_are_published(setup: Setup) -> None:
    setup.put("a", 1)
    setup.put("b", 2)
    pipe = setup.pipe(enrichment=None)

    _run(pipe)

    events = setup.published()
    assert len(events) == 2
    assert {e["source"] for e in events} == {SOURCE}
    assert {e["detail-type"] for e in events} == {DETAIL_TYPE}
    details = sorted(events, key=lambda e: str(e["detail"]["dynamodb"]["Keys"]["pk"]["S"]))
    assert [d["detail"]["eventName"] for d in details] == ["INSERT", "INSERT"]
    assert details[0]["detail"]["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert details[1]["detail"]["eventSourceARN"] == setup.stream_arn


def test_records_written_later_are_read_on_a_later_poll(setup: Setup) -> None:
    setup.put("a")
    pipe = setup.pipe()
    _run(pipe)
    setup.put("b")
    _run(pipe)
    assert _keys(setup.published()) == ["a", "b"]
    assert pipe.stats.records_read == 2  # nothing read twice


def test_a_record_matching_any_filter_passes(setup: Setup) -> None:
    setup.put("a")
    setup.put("a", 1)  # MODIFY
    pipe = setup.pipe(enrichment=None, filters=(INSERTS_ONLY, '{"eventName":["MODIFY"]}'))
    _run(pipe)
    assert len(setup.published()) == 2


def test_a_retried_batch_keeps_its_place_in_the_stream(setup: Setup) -> None:
    fixture_handlers.FAILURES_LEFT["enrich"] = 1
    for n in range(6):
        setup.put(f"k{n}", n)
    put_order: list[str] = []
    setup.clients.events.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: put_order.extend(
            json.loads(entry["Detail"])["key"] for entry in params["Entries"]
        ),
    )
    pipe = setup.pipe(batch_size=2)

    _run(pipe)

    assert put_order == [f"k{n}" for n in range(6)]


def _trim_horizon_iterator(setup: Setup) -> str:
    streams = setup.clients.dynamodbstreams
    (shard,) = streams.describe_stream(StreamArn=setup.stream_arn)["StreamDescription"]["Shards"]
    iterator: str = streams.get_shard_iterator(
        StreamArn=setup.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return iterator
