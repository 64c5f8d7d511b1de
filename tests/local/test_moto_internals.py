"""What the runtime reaches past moto's public API for: pinned, and changing nothing but speed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import jsonpath_ng.ext
import moto
import pytest
from moto import mock_aws
from moto.core import responses
from moto.core import utils as moto_utils
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.sqs import models as sqs_models
from moto.sqs.models import SQSBackend, sqs_backends
from moto.sqs.responses import SQSResponse

from payment_local import moto_internals
from payment_local.clients import AwsClients
from payment_local.moto_internals import MotoVersionError
from tests.local.support import ACCOUNT, REGION, create_queue, drain

TABLE = "t"


@pytest.fixture
def patched() -> Iterator[AwsClients]:
    moto_internals.apply_patches()
    with mock_aws():
        yield AwsClients(REGION)


# -- the version pin --------------------------------------------------------------------


def test_the_pinned_version_is_the_installed_one() -> None:
    moto_internals.check_version()
    assert moto.__version__ == moto_internals.PINNED_MOTO_VERSION


@pytest.mark.parametrize("version", ["5.2.6", "5.1.0", "6.0.0"])
def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(moto, "__version__", version)
    with pytest.raises(MotoVersionError, match=rf"5\.2\.5.*found {version}"):
        moto_internals.check_version()
    with pytest.raises(MotoVersionError):
        moto_internals.apply_patches()
    with pytest.raises(MotoVersionError):
        moto_internals.get_stream_records(ACCOUNT, REGION, "iterator", 1)


# -- the JSONPath cache: rule input transformers ------------------------------------------


TRANSFORMER = {
    "InputPathsMap": {
        "id": "$.detail.transactionId",
        "amount": "$.detail.amount",
        "source": "$.source",
        "card": "$.detail.card",
    },
    "InputTemplate": '{"transaction": "<id>", "cents": <amount>, "from": "<source>", '
    '"card": <card>}',
}
DETAIL = {"transactionId": "t-1", "amount": 12, "card": {"last4": "4242", "brand": "visa"}}
RENDERED = {
    "transaction": "t-1",
    "cents": 12,
    "from": "payments.test",
    "card": {"last4": "4242", "brand": "visa"},
}


def _deliver_transformed(clients: AwsClients, suffix: str, detail: dict[str, Any]) -> str:
    bus = f"bus-{suffix}"
    clients.events.create_event_bus(Name=bus)
    url, arn = create_queue(clients, f"out-{suffix}")
    clients.events.put_rule(
        Name="r", EventBusName=bus, EventPattern=json.dumps({"source": ["payments.test"]})
    )
    clients.events.put_targets(
        Rule="r",
        EventBusName=bus,
        Targets=[{"Id": "q", "Arn": arn, "InputTransformer": TRANSFORMER}],
    )
    clients.events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "payments.test",
                "DetailType": "T",
                "Detail": json.dumps(detail),
            }
        ]
    )
    (message,) = drain(clients, url)
    body: str = message["Body"]
    return body


def test_the_input_transformer_renders_the_same_with_the_cache(
    patched: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    jsonpath_ext: Any = jsonpath_ng.ext  # the module moto's template parser imports from
    cached: Any = jsonpath_ext.parse
    assert hasattr(cached, "cache_info"), "apply_patches() did not install the cache"
    hits_before = cached.cache_info().hits

    with_patch = [_deliver_transformed(patched, f"p{n}", DETAIL) for n in range(2)]
    assert cached.cache_info().hits > hits_before  # the second delivery used the cache

    monkeypatch.setattr(jsonpath_ext, "parse", cached.__wrapped__)
    without_patch = _deliver_transformed(patched, "plain", DETAIL)

    assert with_patch == [without_patch, without_patch]
    assert json.loads(without_patch) == RENDERED


def test_the_cache_does_not_mix_up_events(patched: AwsClients) -> None:
    other = {**DETAIL, "transactionId": "t-2", "amount": 99}
    first = json.loads(_deliver_transformed(patched, "a", DETAIL))
    second = json.loads(_deliver_transformed(patched, "b", other))
    assert (first["transaction"], first["cents"]) == ("t-1", 12)
    assert (second["transaction"], second["cents"]) == ("t-2", 99)


# -- the retention check ----------------------------------------------------------------


def _age_last_message(queue_name: str, seconds: float) -> None:
    queue: Any = sqs_backends[ACCOUNT][REGION].get_queue(queue_name)
    queue._messages[-1].sent_timestamp = int((time.time() - seconds) * 1000)


def test_the_retention_patch_is_installed(patched: AwsClients) -> None:
    backend: Any = SQSBackend
    assert backend.is_message_valid_based_on_retention_period is moto_internals._within_retention


def test_a_message_within_retention_is_received(patched: AwsClients) -> None:
    url, _ = create_queue(patched, "kept", {"MessageRetentionPeriod": "60"})
    patched.sqs.send_message(QueueUrl=url, MessageBody="fresh")
    patched.sqs.send_message(QueueUrl=url, MessageBody="not so fresh")
    _age_last_message("kept", 50)
    assert sorted(m["Body"] for m in drain(patched, url)) == ["fresh", "not so fresh"]


def test_a_message_older_than_retention_is_not_received(patched: AwsClients) -> None:
    url, _ = create_queue(patched, "expiring", {"MessageRetentionPeriod": "60"})
    patched.sqs.send_message(QueueUrl=url, MessageBody="expired")
    _age_last_message("expiring", 61)
    assert patched.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_the_default_retention_applies_without_the_attribute(patched: AwsClients) -> None:
    url, _ = create_queue(patched, "default")  # four days
    patched.sqs.send_message(QueueUrl=url, MessageBody="three days old")
    _age_last_message("default", 3 * 86400)
    patched.sqs.send_message(QueueUrl=url, MessageBody="five days old")
    _age_last_message("default", 5 * 86400)
    bodies = [
        m["Body"]
        for m in patched.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies == ["three days old"]


# -- stream records ---------------------------------------------------------------------


@pytest.fixture
def stream(patched: AwsClients) -> str:
    table = patched.dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    patched.dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    patched.dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": "2"}})
    arn: str = table["LatestStreamArn"]
    return arn


def _iterator(clients: AwsClients, stream_arn: str) -> str:
    streams = clients.dynamodbstreams
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator: str = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return iterator


def test_stream_records_have_the_get_records_shape(patched: AwsClients, stream: str) -> None:
    api = patched.dynamodbstreams.get_records(ShardIterator=_iterator(patched, stream))["Records"]
    next_iterator, records = moto_internals.get_stream_records(
        ACCOUNT, REGION, _iterator(patched, stream), 100
    )

    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    assert len(records) == len(api)
    for ours, theirs in zip(records, api, strict=True):
        created = ours["dynamodb"].pop("ApproximateCreationDateTime")
        their_created = theirs["dynamodb"].pop("ApproximateCreationDateTime")
        assert isinstance(created, float)
        assert isinstance(their_created, datetime)
        assert abs(created - their_created.timestamp()) < 1
        assert abs(created - time.time()) < 60
        assert ours["awsRegion"] == REGION
        theirs["awsRegion"] = REGION  # moto's API answers us-east-1 whatever the region
        assert ours == theirs
    assert records[1]["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "2"}}

    # The next iterator continues after what was read.
    assert moto_internals.get_stream_records(ACCOUNT, REGION, next_iterator, 100)[1] == []
    patched.dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "b"}})
    _, later = moto_internals.get_stream_records(ACCOUNT, REGION, next_iterator, 100)
    assert [r["dynamodb"]["Keys"] for r in later] == [{"pk": {"S": "b"}}]


def test_stream_records_are_copies(patched: AwsClients, stream: str) -> None:
    _, first = moto_internals.get_stream_records(ACCOUNT, REGION, _iterator(patched, stream), 100)
    pristine = json.loads(json.dumps(first))
    for record in first:
        record["eventSourceARN"] = "changed"
        record["eventName"] = "REMOVE"
        record["dynamodb"]["NewImage"]["n"]["N"] = "999"
        record["dynamodb"]["Keys"].clear()

    _, again = moto_internals.get_stream_records(ACCOUNT, REGION, _iterator(patched, stream), 100)

    assert again == pristine
    backend: Any = dynamodbstreams_backends[ACCOUNT][REGION]
    stored = backend.dynamodb.get_table(TABLE).stream_shard.items[0].record
    assert "eventSourceARN" not in stored
    assert isinstance(stored["dynamodb"]["ApproximateCreationDateTime"], datetime)


def test_the_cached_helpers_answer_as_moto_does(patched: AwsClients) -> None:
    moto_responses: Any = responses  # moto's modules do not re-export what they import
    sqs_models_any: Any = sqs_models
    utils_any: Any = moto_utils
    # The patched names are the cached ones, where moto's modules bound them...
    assert sqs_models_any.camelcase_to_underscores is moto_responses.camelcase_to_underscores
    assert hasattr(moto_responses.camelcase_to_underscores, "cache_info")
    # ...and give what moto's own functions give (their code is still moto's).
    original = utils_any.camelcase_to_underscores.__wrapped__
    for name in ("QueueArn", "ContentBasedDeduplication", "ReceiveMessage", "KmsMasterKeyId"):
        assert moto_responses.camelcase_to_underscores(name) == original(name)
    names = moto_responses.method_names_from_class(SQSResponse)
    assert "receive_message" in names
    assert "send_message" in names
    names.clear()  # a caller's list is its own
    assert "send_message" in moto_responses.method_names_from_class(SQSResponse)
    # A request still reaches its action through them.
    url = patched.sqs.create_queue(QueueName="cached-helpers")["QueueUrl"]
    patched.sqs.send_message(QueueUrl=url, MessageBody="x")
    attributes = patched.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_a_missing_path_an_is_present_check_answers_is_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    moto_internals.apply_patches()
    logger = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        logger.error("%s at '%s'", "Exception=NoSuchJsonPathError, Details=None", "$['x']")
        logger.error("%s at '%s'", "Exception=FailureEventException, Error=States.Runtime", "s")
    assert [r.getMessage()[:31] for r in caplog.records] == ["Exception=FailureEventException"]
