"""Lambda handlers the local-runtime tests invoke through ``LocalFunction``.

Each handler records what it received in ``CALLS`` (by handler name); ``FAILURES_LEFT`` says
how many more times a "fail N times" handler fails. ``reset()`` clears both (the package's
conftest calls it around every test).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from functools import cache
from typing import Any

import boto3

CALLS: defaultdict[str, list[Any]] = defaultdict(list)
FAILURES_LEFT: dict[str, int] = {}
POISON = "poison"


class HandlerError(Exception):
    """What the fixture handlers raise when they are told to fail."""


def reset() -> None:
    CALLS.clear()
    FAILURES_LEFT.clear()


def _fail_if_told(name: str) -> None:
    left = FAILURES_LEFT.get(name, 0)
    if left > 0:
        FAILURES_LEFT[name] = left - 1
        raise HandlerError(f"{name} told to fail ({left - 1} failures left)")


# -- asynchronous and SQS-batch handlers --------------------------------------------------


def always_ok(event: Any, context: Any) -> None:
    CALLS["always_ok"].append(event)


@cache
def _setting() -> str:
    """Read once per execution environment, as a handler builds its clients once."""
    return os.environ["SETTING"]


def cached_setting(event: Any, context: Any) -> str:
    return _setting()


def read_named_file(event: Any, context: Any) -> str:
    """Reads the file the environment names in FILE_TO_READ, as a handler reads a layer's."""
    with open(os.environ["FILE_TO_READ"], encoding="ascii") as file:
        return file.read()


def always_fail(event: Any, context: Any) -> None:
    CALLS["always_fail"].append(event)
    raise HandlerError("always fails")


def flaky(event: Any, context: Any) -> dict[str, str]:
    """Fails ``FAILURES_LEFT["flaky"]`` times, then succeeds."""
    CALLS["flaky"].append(event)
    _fail_if_told("flaky")
    return {"status": "ok"}


def fail_on_poison(event: Any, context: Any) -> None:
    """An SQS batch handler that fails the whole batch if any body holds the poison."""
    CALLS["fail_on_poison"].append(event)
    if any(POISON in record["body"] for record in event["Records"]):
        raise HandlerError("poison in the batch")


def report_poison(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    """An SQS batch handler reporting the messages holding the poison as item failures."""
    CALLS["report_poison"].append(event)
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if POISON in record["body"]
        ]
    }


def report_unknown(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    """Names a message that is not in the batch."""
    CALLS["report_unknown"].append(event)
    return {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]}


def forward_detail(event: Any, context: Any) -> None:
    """An EventBridge target that sends the event's detail to the queue in FORWARD_QUEUE_URL."""
    CALLS["forward_detail"].append(event)
    if event["detail"].get("fail"):
        raise HandlerError("told to fail by the event")
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=os.environ["FORWARD_QUEUE_URL"], MessageBody=json.dumps(event))


# -- pipe enrichments -------------------------------------------------------------------


def _key(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


def enrich(event: Any, context: Any) -> list[dict[str, Any]]:
    """One element per stream record: its key and its new image's ``n``."""
    CALLS["enrich"].append(event)
    _fail_if_told("enrich")
    if any(_key(record) == POISON for record in event):
        raise HandlerError("poison record")
    return [
        {"key": _key(record), "n": int(record["dynamodb"]["NewImage"]["n"]["N"])}
        for record in event
    ]


def enrich_to_one(event: Any, context: Any) -> dict[str, Any]:
    """Returns one object (not a list) for the whole batch."""
    CALLS["enrich_to_one"].append(event)
    return {"keys": [_key(record) for record in event]}


# -- a pipeline in miniature, for the run's later phases (test_lifecycle_run.py) ----------


def _put_on_bus(entries: list[tuple[str, str, dict[str, Any]]]) -> None:
    events = boto3.client("events")
    requests = [
        {
            "EventBusName": os.environ["BUS_NAME"],
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
        }
        for source, detail_type, detail in entries
    ]
    for start in range(0, len(requests), 10):
        events.put_events(Entries=requests[start : start + 10])


def publish_listed_events(event: Any, context: Any) -> list[Any]:
    """A pipe enrichment standing in for the whole pipeline: each stream record's new image
    lists, in ``events`` (JSON), the events its transaction gets; they are put on the bus
    in BUS_NAME, and the pipe is left nothing to publish itself."""
    CALLS["publish_listed_events"].append(event)
    _put_on_bus(
        [
            (listed["source"], listed["detailType"], listed["detail"])
            for record in event
            for listed in json.loads(record["dynamodb"]["NewImage"]["events"]["S"])
        ]
    )
    return []


def decide_review(event: Any, context: Any) -> None:
    """A rules engine taking a ReviewDecided: approved, on to posting (and posted); declined,
    rejected DECLINED_IN_REVIEW."""
    CALLS["decide_review"].append(event)
    tx = event["detail"]["transactionId"]
    if event["detail"]["decision"] == "APPROVE":
        _put_on_bus(
            [
                ("payments.rules", "TransactionApproved", {"transactionId": tx}),
                ("payments.posting", "TransactionPosted",
                 {"transactionId": tx, "postingStatus": "POSTED"}),
            ]
        )  # fmt: skip
    else:
        _put_on_bus(
            [
                ("payments.rules", "TransactionRejected",
                 {"transactionId": tx, "reasonCode": "DECLINED_IN_REVIEW"}),
            ]
        )  # fmt: skip


def ignore_review(event: Any, context: Any) -> None:
    """A rule target that takes a ReviewDecided and never answers it."""
    CALLS["ignore_review"].append(event)


def sweep_and_announce(event: Any, context: Any) -> None:
    """The ledger's expiry sweeper (as of the scheduled event's time), announcing each hold it
    released as a HoldExpired unless ANNOUNCE is "false". The tests' pending ids are the
    authorizations' transaction ids."""
    from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger
    from payment_posting_functions.domain.ledger_v2.model import EXPIRE_PREFIX
    from payment_posting_functions.handlers.expiry_sweeper import sweep_time

    CALLS["sweep_and_announce"].append(event)
    ledger = DynamoDBLedger(
        boto3.client("dynamodb"), os.environ["JOURNAL_TABLE"], os.environ["BALANCES_TABLE"]
    )
    announced = []
    for result in ledger.expire_due(sweep_time(event)):
        pending_id = result.transfer_id.removeprefix(EXPIRE_PREFIX)
        pending = ledger.pending(pending_id)
        booked = ledger.lookup_transfer(result.transfer_id)
        assert pending is not None
        assert booked is not None
        detail = {
            "transactionId": pending_id,
            "pendingId": pending_id,
            "accountId": pending.debit_account_id,
            "released": {"amount": booked.amount, "currency": pending.currency},
        }
        announced.append(("payments.posting", "HoldExpired", detail))
    if os.environ.get("ANNOUNCE") != "false":
        _put_on_bus(announced)
