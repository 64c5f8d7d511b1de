"""The publisher against a stub EventBridge client: how many PutEvents calls, of what size, and
which entries it reports refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError

from payment_posting_functions.domain.events import StreamPosition, TransactionQuarantined
from payment_posting_functions.domain.publisher import (
    PUT_EVENTS_LIMIT,
    PUT_EVENTS_MAX_BYTES,
    Entry,
    EventPublisher,
    PublishError,
    batches,
)

ORIGIN = StreamPosition(table_key={"transactionId": "tx-q"}, sequence_number="1")


class StubEvents:
    """Records each PutEvents call; refuses the entries whose detail names a refused id."""

    def __init__(
        self, refuse: frozenset[str] = frozenset(), error: Exception | None = None
    ) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse
        self.error = error

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.calls.append(Entries)
        if self.error is not None:
            raise self.error
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}
            if _id(entry) in self.refuse
            else {"EventId": f"e-{n}"}
            for n, entry in enumerate(Entries)
        ]
        return {
            "FailedEntryCount": sum("ErrorCode" in r for r in results),
            "Entries": results,
        }


def _id(entry: dict[str, Any]) -> str:
    detail = json.loads(entry["Detail"])
    return str(detail.get("id") or detail["transactionId"])


def entry(number: int, detail_bytes: int = 0) -> Entry:
    detail = {"id": f"tx-{number}", "pad": "x" * detail_bytes}
    return Entry("payments.posting", "TransactionPosted", json.dumps(detail))


@pytest.mark.parametrize(("count", "calls"), [(1, 1), (10, 1), (11, 2), (23, 3), (30, 3)])
def test_entries_go_out_ten_to_a_call(count: int, calls: int) -> None:
    client = StubEvents()
    entries = [entry(n) for n in range(count)]

    assert EventPublisher(client, "bus").put(entries) == {}

    assert len(client.calls) == calls
    assert all(len(call) <= PUT_EVENTS_LIMIT for call in client.calls)
    sent = [json.loads(e["Detail"])["id"] for call in client.calls for e in call]
    assert sent == [f"tx-{n}" for n in range(count)]  # each once, in order
    assert {e["EventBusName"] for call in client.calls for e in call} == {"bus"}


def test_a_call_stays_under_256_kb() -> None:
    # Five entries of about 100 KB: two fit a call, a third would pass 256 KB.
    entries = [entry(n, detail_bytes=100 * 1024) for n in range(5)]
    client = StubEvents()

    EventPublisher(client, "bus").put(entries)

    assert [len(call) for call in client.calls] == [2, 2, 1]
    for call in client.calls:
        size = sum(
            len(e["Source"].encode()) + len(e["DetailType"].encode()) + len(e["Detail"].encode())
            for e in call
        )
        assert size < PUT_EVENTS_MAX_BYTES


def test_the_size_is_eventbridges_measure_in_utf8_bytes() -> None:
    wide = Entry("s", "t", json.dumps({"name": "Zoë"}, ensure_ascii=False))
    assert wide.size() == 1 + 1 + len('{"name": "Zoë"}'.encode())
    assert wide.size() > 1 + 1 + len('{"name": "Zoë"}')


def test_an_entry_too_big_alone_gets_its_own_call() -> None:
    entries = [entry(0), entry(1, detail_bytes=PUT_EVENTS_MAX_BYTES), entry(2)]
    assert list(batches(entries)) == [[0], [1], [2]]


def test_only_the_refused_entries_are_reported_with_their_code() -> None:
    client = StubEvents(refuse=frozenset({"tx-3", "tx-12"}))
    entries = [entry(n) for n in range(15)]

    refused = EventPublisher(client, "bus").put(entries)

    assert refused == {3: "InternalFailure", 12: "InternalFailure"}


def test_a_failed_call_refuses_its_entries_and_no_others() -> None:
    calls = 0

    class FailSecondCall(StubEvents):
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ClientError({"Error": {"Code": "ThrottlingException"}}, "PutEvents")
            return super().put_events(Entries)

    refused = EventPublisher(FailSecondCall(), "bus").put([entry(n) for n in range(25)])

    assert refused == dict.fromkeys(range(10, 20), "ThrottlingException")


def test_an_unreachable_endpoint_refuses_the_call() -> None:
    client = StubEvents(error=ConnectTimeoutError(endpoint_url="https://events"))
    assert EventPublisher(client, "bus").put([entry(1)]) == {0: "ConnectTimeoutError"}


def test_publish_is_all_or_an_error() -> None:
    events = [
        TransactionQuarantined(transaction_id=f"tx-q{n}", reason="bad", origin=ORIGIN)
        for n in range(12)
    ]
    client = StubEvents()
    EventPublisher(client, "bus").publish(events)
    assert [len(call) for call in client.calls] == [10, 2]

    refusing = StubEvents(refuse=frozenset({"tx-q11"}))
    with pytest.raises(PublishError, match="1 of 12 events refused"):
        EventPublisher(refusing, "bus").publish(events)
    denied = StubEvents(error=ClientError({"Error": {"Code": "AccessDenied"}}, "PutEvents"))
    with pytest.raises(PublishError, match="AccessDenied"):
        EventPublisher(denied, "bus").publish(events[:1])
