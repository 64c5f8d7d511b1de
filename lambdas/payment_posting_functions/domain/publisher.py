"""Publishing lifecycle events to the payments bus, as few PutEvents calls as the limits allow.

PutEvents takes at most 10 entries per call, and their total size (EventBridge's own measure:
``Entry.size``) must stay under 256 KB. The bus may accept some entries of a call and refuse
others (``FailedEntryCount``, an ``ErrorCode`` per entry): ``EventPublisher.put`` says which,
so a caller that batches the events of many records can retry exactly those records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payment_posting_functions.domain.events import LifecycleEvent

PUT_EVENTS_LIMIT = 10
# "The total entry size must be less than 256KB" (EventBridge User Guide, eb-putevent-size).
PUT_EVENTS_MAX_BYTES = 256 * 1024
# What EventBridge counts for a ``Time`` parameter; the entries here carry none.
_TIME_BYTES = 14


class PublishError(Exception):
    """The bus refused some entries; raised so the invocation is retried, not half done."""


@dataclass(frozen=True)
class Entry:
    """One PutEvents entry: who says it, what it is, and its detail as JSON."""

    source: str
    detail_type: str
    detail: str

    @classmethod
    def of(cls, event: LifecycleEvent) -> Entry:
        return cls(event.source.value, event.name.value, json.dumps(event.to_detail()))

    def size(self) -> int:
        """The entry's size as EventBridge calculates it against the 256 KB limit: the UTF-8
        bytes of Source, DetailType and Detail (and 14 for a Time, 0 here: none is set)."""
        return sum(len(part.encode()) for part in (self.source, self.detail_type, self.detail))


def batches(entries: Sequence[Entry]) -> Iterator[list[int]]:
    """The indices of ``entries`` in order, cut into PutEvents calls: at most 10 entries and
    under 256 KB each. An entry too big on its own still gets a call (the bus refuses it,
    and ``put`` reports it), so one oversized event never holds back the others."""
    batch: list[int] = []
    size = 0
    for index, entry in enumerate(entries):
        entry_size = entry.size()
        if batch and (len(batch) == PUT_EVENTS_LIMIT or size + entry_size >= PUT_EVENTS_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += entry_size
    if batch:
        yield batch


class EventPublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        """``client`` is a boto3 EventBridge client."""
        self._client = client
        self._bus_name = bus_name

    def put(self, entries: Sequence[Entry]) -> dict[int, str]:
        """Put ``entries`` in as few calls as the limits allow; what the bus refused, by
        index into ``entries``, with the error code (per entry, or of the whole call when
        the call itself failed after botocore's own retries)."""
        refused: dict[int, str] = {}
        for batch in batches(entries):
            try:
                response = self._client.put_events(
                    Entries=[
                        {
                            "EventBusName": self._bus_name,
                            "Source": entries[index].source,
                            "DetailType": entries[index].detail_type,
                            "Detail": entries[index].detail,
                        }
                        for index in batch
                    ]
                )
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", "ClientError"))
                refused.update(dict.fromkeys(batch, code))
                continue
            except BotoCoreError as error:  # a timeout, an endpoint out of reach
                refused.update(dict.fromkeys(batch, type(error).__name__))
                continue
            if response.get("FailedEntryCount"):
                # The response lists one result per entry, in the order of the request.
                for index, result in zip(batch, response["Entries"], strict=True):
                    if result.get("ErrorCode"):
                        refused[index] = str(result["ErrorCode"])
        return refused

    def publish(self, events: Sequence[LifecycleEvent]) -> None:
        """Put ``events``, all or an error: for a caller whose retry is the whole invocation."""
        refused = self.put([Entry.of(event) for event in events])
        if refused:
            raise PublishError(
                f"{len(refused)} of {len(events)} events refused: {set(refused.values())}"
            )
