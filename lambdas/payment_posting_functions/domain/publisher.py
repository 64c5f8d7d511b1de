"""Publishing lifecycle events to the payments bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from payment_posting_functions.domain.events import LifecycleEvent

PUT_EVENTS_LIMIT = 10


class PublishError(Exception):
    """The bus refused some entries; raised so the invocation is retried, not half done."""


class EventPublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        """``client`` is a boto3 EventBridge client."""
        self._client = client
        self._bus_name = bus_name

    def publish(self, events: Sequence[LifecycleEvent]) -> None:
        for start in range(0, len(events), PUT_EVENTS_LIMIT):
            chunk = events[start : start + PUT_EVENTS_LIMIT]
            response = self._client.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus_name,
                        "Source": event.source.value,
                        "DetailType": event.name.value,
                        "Detail": json.dumps(event.to_detail()),
                    }
                    for event in chunk
                ]
            )
            if response.get("FailedEntryCount"):
                codes = {e.get("ErrorCode") for e in response["Entries"] if e.get("ErrorCode")}
                raise PublishError(
                    f"{response['FailedEntryCount']} of {len(chunk)} events refused: {codes}"
                )
