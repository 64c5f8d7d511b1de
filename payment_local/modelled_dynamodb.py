"""DynamoDB's round trip and transaction conflicts, in virtual time, over moto.

moto answers one call at a time and spends tens of milliseconds of CPU on it, so worker threads
against it measure moto, not the ledger. Here every worker runs on a virtual clock: a call is
issued at the worker's virtual time, takes a modelled round trip, and calls are executed on moto
strictly in the order of their virtual issue times (a conservative discrete-event schedule: a
call runs only once no other worker can still issue an earlier one). Throughput is postings
per virtual second, so K workers overlap as K clients of DynamoDB would, whatever the machine.

What overlapping calls do, as DynamoDB does:

- a ``TransactWriteItems`` touching an item that another transaction is still writing (issued
  less than a round trip earlier) is cancelled with ``TransactionConflict`` for that item;
- a single-item write to such an item fails with ``TransactionConflictException``;
- reads see what was written by calls issued before them, so a read-then-conditional-write
  races exactly as it does against DynamoDB.

It counts, per item, how many calls wrote it: the share of postings that wrote the hottest item
is what says whether one item is the ceiling.

Not modelled: partition throughput limits (1,000 write units/s per partition), adaptive
capacity, throttling, and latency beyond a uniform jitter.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

ItemKey = tuple[str, str]  # (table, the item's key attributes)

_WRITES = ("put_item", "update_item", "delete_item")
_READS = ("get_item", "query", "scan", "batch_get_item", "transact_get_items")


@dataclass
class CallStats:
    calls: Counter[str] = field(default_factory=Counter)
    writes_per_item: Counter[ItemKey] = field(default_factory=Counter)
    transaction_conflicts: int = 0
    condition_failures: int = 0
    # The same two, per operation: a posting's TransactWriteItems apart from, say, the
    # conditional UpdateItem that claims a lease.
    refused_by_call: Counter[str] = field(default_factory=Counter)


class VirtualClock:
    """Worker clocks and the schedule that runs calls in the order of their issue times."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._clocks: dict[int, float] = {}
        self._waiting: dict[int, float] = {}
        self._finished = 0.0
        self._local = threading.local()

    def join(self, worker: int) -> None:
        """Register ``worker`` (before any worker starts) at virtual time 0."""
        with self._cond:
            self._clocks[worker] = 0.0

    def bind(self, worker: int) -> None:
        """The calling thread is ``worker`` from now on."""
        self._local.worker = worker

    def leave(self) -> None:
        with self._cond:
            self._finished = max(self._finished, self._clocks.pop(self._local.worker))
            self._cond.notify_all()

    def now(self) -> float:
        return self._clocks[self._local.worker]

    def elapsed(self) -> float:
        """Virtual seconds until the last worker finished."""
        return max(self._finished, *self._clocks.values(), 0.0)

    def sleep(self, seconds: float) -> None:
        """A back-off: the worker's clock moves on, nothing waits in real time."""
        with self._cond:
            self._clocks[self._local.worker] += max(0.0, seconds)
            self._cond.notify_all()

    def call(self, round_trip: float, operation: Callable[[float], Any]) -> Any:
        """Run ``operation(issued_at)`` in issue order; the worker's clock moves a round trip."""
        worker = self._local.worker
        with self._cond:
            issued = self._clocks[worker]
            self._waiting[worker] = issued
            while not self._is_next(worker, issued):
                self._cond.wait()
            try:
                return operation(issued)
            finally:
                del self._waiting[worker]
                self._clocks[worker] = issued + round_trip
                self._cond.notify_all()

    def _is_next(self, worker: int, issued: float) -> bool:
        # Any other worker's next call is issued no earlier than its clock (a waiting one's is
        # its issue time): run when none can come before this one (ties: lower worker first).
        return all(
            (issued, worker) <= (self._waiting.get(other, clock), other)
            for other, clock in self._clocks.items()
            if other != worker
        )


class ModelledDynamoDB:
    """Wraps a boto3 DynamoDB client for workers of one ``VirtualClock``."""

    def __init__(
        self, client: Any, clock: VirtualClock, *, latency_s: float = 0.005, jitter_s: float = 0.0
    ) -> None:
        self._client = client
        self._clock = clock
        self._latency_s = latency_s
        self._jitter_s = jitter_s
        self._rng = random.Random(0)  # noqa: S311 (latency jitter, not a secret)
        self._held_until: dict[ItemKey, float] = {}
        self.stats = CallStats()

    def __getattr__(self, name: str) -> Any:
        if name == "transact_write_items":
            return lambda **request: self._timed(lambda at, rt: self._transact(at, rt, request))
        if name in _WRITES:
            return lambda **request: self._timed(
                lambda at, _: self._single_write(at, name, request)
            )
        if name in _READS:
            return lambda **request: self._timed(lambda _, __: self._apply(name, request))
        return getattr(self._client, name)  # exceptions, meta

    def _round_trip(self) -> float:
        return max(0.0, self._latency_s + self._rng.uniform(-self._jitter_s, self._jitter_s))

    def _timed(self, operation: Callable[[float, float], Any]) -> Any:
        round_trip = self._round_trip()
        return self._clock.call(round_trip, lambda at: operation(at, round_trip))

    def _apply(self, name: str, request: dict[str, Any]) -> Any:
        self.stats.calls[name] += 1
        try:
            return getattr(self._client, name)(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                self.stats.condition_failures += 1
                self.stats.refused_by_call[name] += 1
            raise

    def _busy(self, key: ItemKey | None, at: float) -> bool:
        return key is not None and self._held_until.get(key, -1.0) > at

    def _single_write(self, at: float, name: str, request: dict[str, Any]) -> Any:
        key = _item_key(request["TableName"], request.get("Key") or request["Item"])
        if self._busy(key, at):
            self.stats.calls[name] += 1
            self.stats.transaction_conflicts += 1
            self.stats.refused_by_call[name] += 1
            raise _error("TransactionConflictException", name, "a transaction is writing it")
        result = self._apply(name, request)
        self.stats.writes_per_item[key] += 1
        return result

    def _transact(self, at: float, round_trip: float, request: dict[str, Any]) -> Any:
        keys = [_transact_item_key(item) for item in request["TransactItems"]]
        conflicting = {i for i, key in enumerate(keys) if self._busy(key, at)}
        if conflicting:
            self.stats.calls["transact_write_items"] += 1
            self.stats.transaction_conflicts += 1
            self.stats.refused_by_call["transact_write_items"] += 1
            codes = [
                "TransactionConflict" if i in conflicting else "None" for i in range(len(keys))
            ]
            raise _error(
                "TransactionCanceledException",
                "TransactWriteItems",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(codes)}]",
                [{"Code": code} for code in codes],
            )
        result = self._apply("transact_write_items", request)
        # Held until its caller has the answer: a writer's own next call never meets it.
        held_until = at + round_trip
        for key in keys:
            if key is not None:
                self.stats.writes_per_item[key] += 1
                self._held_until[key] = held_until
        return result


def _item_key(table: str, key: dict[str, Any]) -> ItemKey:
    # The key attributes only: a put's Item holds more, but pk/sk are what identify it.
    identity = sorted((name, str(key[name])) for name in ("pk", "sk", "id") if name in key)
    return table, repr(identity)


def _transact_item_key(item: dict[str, Any]) -> ItemKey | None:
    ((operation, body),) = item.items()
    if operation == "ConditionCheck":
        return None  # read, not written
    return _item_key(body["TableName"], body.get("Key") or body["Item"])


def _error(
    code: str, operation: str, message: str, reasons: list[dict[str, str]] | None = None
) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    if reasons is not None:
        response["CancellationReasons"] = reasons
    return ClientError(response, operation)
