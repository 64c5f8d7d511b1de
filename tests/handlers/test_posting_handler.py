"""The posting handler on moto: SQS batches as Lambda delivers them, the real ledger tables, a real
idempotency table, and a queue tapping the bus for what the handler publishes.

What matters is the effect on the ledger: every approved transaction moves money exactly once,
whatever the queue redelivers, and a bad record fails alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from payment_posting_functions.domain.accounts import SUSPENSE_ACCOUNT_ID, Account, sample_accounts
from payment_posting_functions.domain.digest import digest_text
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import (
    PostingFailed,
    TransactionApproved,
    TransactionPosted,
)
from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.house import suspense_account
from payment_posting_functions.domain.ledger_v2.model import Balance, BookedTransfer, Entry
from payment_posting_functions.domain.ledger_v2.posting_adapter import LedgerPostingSystem
from payment_posting_functions.domain.posting import (
    PermanentPostingError,
    PostingFailureCode,
    PostingRequest,
    PostingResult,
    PostingStatus,
    TransientPostingError,
)
from payment_posting_functions.domain.posting_instructions import posting_request_for
from payment_posting_functions.domain.publisher import EventPublisher
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_posting_functions.handlers import posting
from tests.factories import valid_item
from tests.handlers.conftest import handler_output, metric_unit, metric_values

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

JOURNAL_TABLE = "journal"
BALANCES_TABLE = "balances"
IDEMPOTENCY_TABLE = "idempotency"
BUS = "payments"
REGION = "eu-west-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:PostingQueue"
TOKEN = valid_item()["panToken"]
ACCOUNTS: dict[str, Account] = {account.account_id: account for account in sample_accounts()}
CUSTOMER = "ACC-0001"
CLEARING = "CLEARING-EUR"
BILLED = valid_item()["billingAmount"]["amount"]  # 1152 EUR


def transaction_id(number: int) -> str:
    return f"tx-posting-{number:06d}"


def approved(number: int = 1, **overrides: Any) -> TransactionApproved:
    """An approved transaction as the rules engine emits it, enriched from the sample accounts."""
    # Each its own card transaction: its own RRN (the link the ledger keeps it under).
    fields = {"transactionId": transaction_id(number), "rrn": f"{number:012d}", **overrides}
    transaction = AuthorizedTransaction.model_validate(valid_item(**fields))
    return TransactionApproved(
        transaction_id=transaction.transaction_id,
        transaction=transaction,
        enrichment=enrich(transaction, ACCOUNTS.get(transaction.account_id)),
    )


def eventbridge_event(detail: dict[str, Any]) -> dict[str, Any]:
    """The event as the rule writes it into the queue."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "TransactionApproved",
        "source": "payments.rules",
        "account": "123456789012",
        "time": "2026-11-24T10:15:31Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def record(
    message_id: str, body: str | dict[str, Any], *, receive_count: int = 1
) -> dict[str, Any]:
    """One SQS record as the Lambda event source mapping delivers it."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}-{receive_count}",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795860931000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795860931010",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 (SQS's own checksum)
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def message(
    event: TransactionApproved, message_id: str | None = None, *, receive_count: int = 1
) -> dict[str, Any]:
    """The approved event as the rule put it in the queue; the message id names the transaction."""
    body = eventbridge_event(event.to_detail())
    message_id = message_id or f"msg-{event.transaction_id}"
    return record(message_id, body, receive_count=receive_count)


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every event the tap queue holds."""
    sqs = boto3.client("sqs")
    events: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return events
        for received in messages:
            events.append(json.loads(received["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received["ReceiptHandle"])


def posted_events(events: list[dict[str, Any]]) -> list[TransactionPosted]:
    assert {e["detail-type"] for e in events} <= {"TransactionPosted"}, events
    assert {e["source"] for e in events} <= {"payments.posting"}
    return [TransactionPosted.model_validate(e["detail"]) for e in events]


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


@pytest.fixture
def ledger_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Ledger v2's tables, with the sample directory's accounts and EUR's house accounts
    open (v2 posts only to accounts that exist)."""
    for definition in table_definitions(JOURNAL_TABLE, BALANCES_TABLE):
        dynamodb.create_table(**definition)
    ledger = DynamoDBLedger(dynamodb, JOURNAL_TABLE, BALANCES_TABLE)
    for account in sample_accounts():
        ledger.open_account(account.account_id, "EUR", credit_limit=100_000_000)
    ledger.open_account(CLEARING, "EUR")
    ledger.open_account(suspense_account("EUR"), "EUR")
    monkeypatch.setenv("LEDGER_JOURNAL_TABLE_NAME", JOURNAL_TABLE)
    monkeypatch.setenv("LEDGER_BALANCES_TABLE_NAME", BALANCES_TABLE)
    monkeypatch.setenv("POSTING_SYSTEM", "ledger")
    return JOURNAL_TABLE


class LedgerView:
    """A second view of the handler's ledger: v2 read through the few questions these tests
    ask (balances, entries, the booked transfer, the trial balance of EUR)."""

    def __init__(self, client: Any) -> None:
        self.ledger = DynamoDBLedger(client, JOURNAL_TABLE, BALANCES_TABLE)
        self._client = client

    def post(self, request: PostingRequest) -> PostingResult:
        return LedgerPostingSystem(self.ledger).post(request)

    def balance(self, account_id: str, currency: str) -> Balance:
        balance = self.ledger.balance(account_id)
        assert balance.currency == currency
        return balance

    def posting(self, transaction_id: str) -> BookedTransfer | None:
        return self.ledger.lookup_transfer(transaction_id)

    def trial_balance(self) -> dict[str, int]:
        return {"EUR": self.ledger.trial_balance("EUR").posted}

    def scan_entries(self) -> list[Entry]:
        items = self._client.scan(TableName=JOURNAL_TABLE)["Items"]
        return [
            Entry.model_validate_json(i["record"]["S"])
            for i in items
            if i["sk"]["S"].startswith("ENTRY#")
        ]


@pytest.fixture
def idempotency_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    return IDEMPOTENCY_TABLE


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """The handler caches its adapters per process, as Lambda does; each test gets new ones."""

    def clear() -> None:
        posting.posting_system_for.cache_clear()
        posting.publisher.cache_clear()
        posting.post_once.cache_clear()

    clear()
    yield
    clear()


@pytest.fixture
def ledger(dynamodb: Any, ledger_table: str) -> LedgerView:
    """A second view of the handler's ledger, for reading balances and entries."""
    return LedgerView(dynamodb)


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    with handler_output(posting.logger, capsys) as read:
        yield read


@pytest.fixture
def handle(
    ledger_table: str, idempotency_table: str, lambda_context: Any
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        response = posting.handler(event, lambda_context)
        assert isinstance(response, dict)
        return response

    return invoke


Handle = Callable[[dict[str, Any]], dict[str, Any]]


class CountingBus:
    """The moto EventBridge client, counting PutEvents calls, and refusing (as the bus may:
    ``FailedEntryCount`` and an ``ErrorCode`` per entry) the events of the transactions in
    ``refuse``; the rest go on to moto, and to the tap."""

    def __init__(self) -> None:
        self.client = boto3.client("events")
        self.calls: list[int] = []
        self.refuse: set[str] = set()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(len(Entries))

        def refused(entry: dict[str, Any]) -> bool:
            return json.loads(entry["Detail"])["transactionId"] in self.refuse

        accepted = [entry for entry in Entries if not refused(entry)]
        results = iter(self.client.put_events(Entries=accepted)["Entries"] if accepted else [])
        entries = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            if refused(entry)
            else next(results)
            for entry in Entries
        ]
        return {"FailedEntryCount": sum("ErrorCode" in e for e in entries), "Entries": entries}


@pytest.fixture
def bus(tap: str, monkeypatch: pytest.MonkeyPatch) -> CountingBus:
    counting = CountingBus()
    monkeypatch.setattr(posting, "publisher", lambda: EventPublisher(counting, BUS))
    return counting


def entry_count(ledger: LedgerView) -> int:
    return len(ledger.scan_entries())


def test_a_batch_is_posted_and_published(
    handle: Handle, tap: str, ledger: LedgerView, logs: Callable[[], str]
) -> None:
    approvals = [approved(n) for n in range(1, 6)]

    response = handle(batch(*(message(a) for a in approvals)))

    assert response == {"batchItemFailures": []}
    events = posted_events(drain(tap))
    assert sorted(e.transaction_id for e in events) == [a.transaction_id for a in approvals]
    for event in events:
        assert event.posting_status == PostingStatus.POSTED
        assert event.posting_id == event.transaction_id  # the ledger's transfer id
        assert event.account_id == CUSTOMER
        assert event.counter_account_id == CLEARING
        assert event.amount.amount == BILLED
        assert event.amount.currency == "EUR"
        assert event.direction == "DEBIT"
        assert event.posting_system == "ledger"
    assert ledger.balance(CUSTOMER, "EUR").posted == -5 * BILLED
    assert ledger.balance(CLEARING, "EUR").posted == 5 * BILLED
    assert ledger.trial_balance() == {"EUR": 0}
    assert entry_count(ledger) == 10  # two legs each
    output = logs()
    assert "TransactionsPosted" in output  # the capture works: the metrics line is there
    assert TOKEN not in output


@pytest.mark.parametrize(
    "poison",
    [
        pytest.param("this is not json", id="body-not-json"),
        pytest.param(
            eventbridge_event({"transactionId": "tx-poison-000001", "name": "TransactionApproved"}),
            id="detail-missing-fields",
        ),
        pytest.param({"source": "payments.rules"}, id="no-detail"),
    ],
)
def test_a_poison_record_fails_alone(
    handle: Handle,
    tap: str,
    ledger: LedgerView,
    logs: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
    poison: str | dict[str, Any],
) -> None:
    good = [approved(n) for n in range(1, 5)]
    records = [message(a) for a in good]
    records.insert(2, record("msg-poison", poison))

    with caplog.at_level("DEBUG"):
        response = handle(batch(*records))

    assert failed_ids(response) == ["msg-poison"]
    events = posted_events(drain(tap))
    assert sorted(e.transaction_id for e in events) == [a.transaction_id for a in good]
    assert ledger.balance(CUSTOMER, "EUR").posted == -4 * BILLED
    assert ledger.trial_balance() == {"EUR": 0}
    assert TOKEN not in logs()
    assert TOKEN not in caplog.text


def test_a_redelivered_message_posts_once(handle: Handle, tap: str, ledger: LedgerView) -> None:
    event = approved()
    assert handle(batch(message(event))) == {"batchItemFailures": []}
    first = posted_events(drain(tap))
    assert [e.posting_status for e in first] == [PostingStatus.POSTED]
    entries = entry_count(ledger)
    balance = ledger.balance(CUSTOMER, "EUR")

    # The same message again, as SQS redelivers it (its visibility ran out, say).
    response = handle(batch(message(event, receive_count=2)))

    assert response == {"batchItemFailures": []}
    # Publishing again is allowed (the first publish may not have happened: the redelivery
    # cannot know), posting again is not: the same event, from the idempotency record.
    assert posted_events(drain(tap)) == first
    assert entry_count(ledger) == entries == 2
    assert ledger.balance(CUSTOMER, "EUR") == balance
    assert balance.posted == -BILLED
    assert ledger.trial_balance() == {"EUR": 0}


def test_a_redelivery_after_the_idempotency_record_expired_still_moves_no_money(
    handle: Handle, tap: str, ledger: LedgerView, dynamodb: Any, idempotency_table: str
) -> None:
    """The ledger's own posting record is the last line: it never expires."""
    event = approved()
    handle(batch(message(event)))
    drain(tap)
    balance = ledger.balance(CUSTOMER, "EUR")
    (item,) = dynamodb.scan(TableName=idempotency_table)["Items"]
    dynamodb.update_item(
        TableName=idempotency_table,
        Key={"id": item["id"]},
        UpdateExpression="SET expiration = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )

    response = handle(batch(message(event, receive_count=2)))

    assert response == {"batchItemFailures": []}
    (posted,) = posted_events(drain(tap))  # re-published: the window had passed
    assert posted.posting_status == PostingStatus.ALREADY_POSTED
    assert ledger.balance(CUSTOMER, "EUR") == balance
    assert entry_count(ledger) == 2


def test_the_same_transaction_twice_in_one_batch_posts_once(
    handle: Handle, tap: str, ledger: LedgerView
) -> None:
    event = approved()
    # Two messages for one transaction (EventBridge delivers at least once, too).
    response = handle(batch(message(event, "msg-a"), message(event, "msg-b")))

    assert response == {"batchItemFailures": []}
    statuses = [e.posting_status for e in posted_events(drain(tap))]
    assert statuses.count(PostingStatus.POSTED) == 1
    assert entry_count(ledger) == 2
    assert ledger.balance(CUSTOMER, "EUR").posted == -BILLED


def test_a_crash_after_the_ledger_write_then_a_redelivery_posts_once(
    handle: Handle, tap: str, ledger: LedgerView
) -> None:
    event = approved()
    # The first delivery wrote the ledger and died before it could publish.
    first = ledger.post(posting_request_for(event))
    assert first.status == PostingStatus.POSTED
    balance = ledger.balance(CUSTOMER, "EUR")

    response = handle(batch(message(event, receive_count=2)))

    assert response == {"batchItemFailures": []}
    (posted,) = posted_events(drain(tap))
    assert posted.transaction_id == event.transaction_id
    assert posted.posting_status == PostingStatus.ALREADY_POSTED
    assert posted.posting_id == first.posting_id
    assert ledger.balance(CUSTOMER, "EUR") == balance
    assert entry_count(ledger) == 2
    assert ledger.trial_balance() == {"EUR": 0}


class FunctionTimedOut(BaseException):
    """Lambda killing the invocation: no ``except Exception`` gets to clean up after it."""


def test_the_bus_refusing_after_the_ledger_write_is_retried_without_posting_again(
    handle: Handle, tap: str, bus: CountingBus, ledger: LedgerView
) -> None:
    event, other = approved(1), approved(2)
    bus.refuse = {event.transaction_id}

    response = handle(batch(message(event), message(other)))

    assert failed_ids(response) == [f"msg-{event.transaction_id}"]
    assert [e.transaction_id for e in posted_events(drain(tap))] == [other.transaction_id]
    assert ledger.posting(event.transaction_id) is not None  # the ledger write happened
    balance = ledger.balance(CUSTOMER, "EUR")
    assert balance.posted == -2 * BILLED

    bus.refuse = set()
    response = handle(batch(message(event, receive_count=2)))

    assert response == {"batchItemFailures": []}
    (posted,) = posted_events(drain(tap))
    assert posted.transaction_id == event.transaction_id
    assert posted.posting_status == PostingStatus.POSTED  # the event saved when it posted
    assert ledger.balance(CUSTOMER, "EUR") == balance
    assert entry_count(ledger) == 4


@pytest.mark.parametrize(("size", "calls"), [(1, 1), (10, 1), (23, 3)])
def test_a_batch_publishes_its_events_ten_to_a_put_events_call(
    handle: Handle, tap: str, bus: CountingBus, ledger: LedgerView, size: int, calls: int
) -> None:
    approvals = [approved(n) for n in range(1, size + 1)]

    # Lambda's SQS batches go up to 10,000 with a batching window: 23 is one invocation.
    response = handle(batch(*(message(a) for a in approvals)))

    assert response == {"batchItemFailures": []}
    assert len(bus.calls) == calls
    assert max(bus.calls) <= 10
    events = posted_events(drain(tap))
    assert sorted(e.transaction_id for e in events) == [a.transaction_id for a in approvals]
    assert ledger.trial_balance() == {"EUR": 0}


def test_the_records_whose_events_were_refused_fail_and_their_redelivery_publishes_once(
    handle: Handle, tap: str, bus: CountingBus, ledger: LedgerView
) -> None:
    approvals = [approved(n) for n in range(1, 24)]
    refused = {approvals[n].transaction_id for n in (2, 11, 12, 22)}  # in each of the 3 calls
    bus.refuse = set(refused)

    response = handle(batch(*(message(a) for a in approvals)))

    assert sorted(failed_ids(response)) == sorted(f"msg-{t}" for t in refused)
    published = posted_events(drain(tap))
    assert sorted(e.transaction_id for e in published) == sorted(
        a.transaction_id for a in approvals if a.transaction_id not in refused
    )
    balance = ledger.balance(CUSTOMER, "EUR")
    assert balance.posted == -23 * BILLED  # all posted, whatever the bus said

    # SQS hands back exactly the failed messages; the bus has recovered.
    bus.refuse, bus.calls = set(), []
    redelivered = [message(a, receive_count=2) for a in approvals if a.transaction_id in refused]
    response = handle(batch(*redelivered))

    assert response == {"batchItemFailures": []}
    assert bus.calls == [4]
    again = posted_events(drain(tap))
    assert sorted(e.transaction_id for e in again) == sorted(refused)  # once each
    assert {e.posting_status for e in again} == {PostingStatus.POSTED}
    assert ledger.balance(CUSTOMER, "EUR") == balance  # nothing posted twice
    assert entry_count(ledger) == 2 * 23


def test_a_crash_before_the_batch_is_published_republishes_from_the_idempotency_record(
    handle: Handle,
    tap: str,
    ledger: LedgerView,
    dynamodb: Any,
    idempotency_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The records are COMPLETED before their events go out: the saved response carries the
    event, so a redelivery publishes what the dead invocation never did."""
    approvals = [approved(1), approved(2)]

    def killed(entries: Any) -> None:
        raise FunctionTimedOut

    with monkeypatch.context() as patch:
        patch.setattr(posting.publisher(), "put", killed)
        with pytest.raises(FunctionTimedOut):
            handle(batch(*(message(a) for a in approvals)))

    records = dynamodb.scan(TableName=idempotency_table)["Items"]
    assert {r["status"]["S"] for r in records} == {"COMPLETED"}
    assert drain(tap) == []
    balance = ledger.balance(CUSTOMER, "EUR")

    response = handle(batch(*(message(a, receive_count=2) for a in approvals)))

    assert response == {"batchItemFailures": []}
    published = posted_events(drain(tap))
    assert sorted(e.transaction_id for e in published) == [a.transaction_id for a in approvals]
    assert {e.posting_status for e in published} == {PostingStatus.POSTED}
    assert ledger.balance(CUSTOMER, "EUR").posted == -2 * BILLED
    assert ledger.balance(CUSTOMER, "EUR") == balance


def test_a_timeout_after_the_ledger_write_blocks_until_the_in_progress_window_ends(
    handle: Handle,
    tap: str,
    ledger: LedgerView,
    dynamodb: Any,
    idempotency_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = approved()
    _, system = posting.posting_system()
    real_post = system.post

    def killed(request: PostingRequest) -> PostingResult:
        real_post(request)
        raise FunctionTimedOut  # the ledger was written, the function died before returning

    with monkeypatch.context() as patch:
        patch.setattr(system, "post", killed)
        with pytest.raises(FunctionTimedOut):
            handle(batch(message(event)))

    (record_item,) = dynamodb.scan(TableName=idempotency_table)["Items"]
    assert record_item["status"]["S"] == "INPROGRESS"
    balance = ledger.balance(CUSTOMER, "EUR")
    assert balance.posted == -BILLED

    # A second delivery while the first may still be running is turned back, not posted.
    other = approved(2)
    response = handle(batch(message(event, receive_count=2), message(other)))
    assert failed_ids(response) == [f"msg-{event.transaction_id}"]
    assert [e.transaction_id for e in posted_events(drain(tap))] == [other.transaction_id]
    balance = ledger.balance(CUSTOMER, "EUR")
    assert balance.posted == -2 * BILLED

    # After the in-progress window (the remaining time of the dead invocation; the queue's
    # visibility timeout, six function timeouts, is longer), the redelivery completes it.
    dynamodb.update_item(
        TableName=idempotency_table,
        Key={"id": record_item["id"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    response = handle(batch(message(event, receive_count=3)))

    assert response == {"batchItemFailures": []}
    (posted,) = posted_events(drain(tap))
    assert posted.transaction_id == event.transaction_id
    assert posted.posting_status == PostingStatus.ALREADY_POSTED
    assert ledger.balance(CUSTOMER, "EUR") == balance
    assert entry_count(ledger) == 4


def test_an_approval_from_another_source_is_never_posted(
    handle: Handle, tap: str, ledger: LedgerView
) -> None:
    forged, genuine = approved(1), approved(2)
    forged_record = message(forged)
    body = json.loads(forged_record["body"])
    body["source"] = "payments.enrichment"  # a processor forging the rules engine's verdict
    forged_record["body"] = json.dumps(body)

    response = handle(batch(forged_record, message(genuine)))

    assert failed_ids(response) == [forged_record["messageId"]]
    posted = posted_events(drain(tap))
    assert [p.transaction_id for p in posted] == [genuine.transaction_id]
    assert ledger.posting(forged.transaction_id) is None


def test_a_batch_where_every_record_fails_fails_the_invocation(
    handle: Handle, tap: str, ledger: LedgerView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Powertools raises rather than report every record: Lambda retries the whole batch."""
    _, system = posting.posting_system()

    def throttled(request: PostingRequest) -> PostingResult:
        raise TransientPostingError("DynamoDB: ThrottlingException")

    monkeypatch.setattr(system, "post", throttled)

    with pytest.raises(BatchProcessingError):
        handle(batch(message(approved(1)), record("msg-poison", "not json")))

    assert drain(tap) == []
    assert entry_count(ledger) == 0


def test_a_transient_failure_goes_back_to_the_queue_and_posts_later(
    handle: Handle,
    tap: str,
    ledger: LedgerView,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    flaky, fine = approved(1), approved(2)
    _, system = posting.posting_system()
    real_post = system.post

    def throttled(request: PostingRequest) -> PostingResult:
        if request.transaction_id == flaky.transaction_id:
            raise TransientPostingError("DynamoDB: ThrottlingException")
        return real_post(request)

    with monkeypatch.context() as patch:
        patch.setattr(system, "post", throttled)
        response = handle(batch(message(flaky), message(fine)))

    assert failed_ids(response) == [f"msg-{flaky.transaction_id}"]
    assert [e.transaction_id for e in posted_events(drain(tap))] == [fine.transaction_id]
    assert ledger.posting(flaky.transaction_id) is None

    # The queue hands it back after the visibility timeout; the system has recovered.
    response = handle(batch(message(flaky, receive_count=2)))

    assert response == {"batchItemFailures": []}
    (posted,) = posted_events(drain(tap))
    assert posted.transaction_id == flaky.transaction_id
    assert posted.posting_status == PostingStatus.POSTED
    assert ledger.balance(CUSTOMER, "EUR").posted == -2 * BILLED
    assert ledger.trial_balance() == {"EUR": 0}
    assert TOKEN not in logs()


def test_a_permanent_refusal_ends_posting_failed_and_is_not_retried(
    handle: Handle, tap: str, ledger: LedgerView, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = approved()
    _, system = posting.posting_system()

    def refuse(request: PostingRequest) -> PostingResult:
        # A core system's own words may quote account data: they never reach the bus.
        raise PermanentPostingError(
            "account closed: DE89370400440532013000", PostingFailureCode.REFUSED_BY_CORE
        )

    monkeypatch.setattr(system, "post", refuse)

    response = handle(batch(message(event)))

    assert response == {"batchItemFailures": []}
    (published,) = drain(tap)
    assert published["detail-type"] == "PostingFailed"
    assert published["source"] == "payments.posting"
    failed = PostingFailed.model_validate(published["detail"])
    assert failed.transaction_id == event.transaction_id
    assert failed.reason_code == PostingFailureCode.REFUSED_BY_CORE
    assert failed.reason == "the core banking system refused the posting"
    assert "DE89370400440532013000" not in json.dumps(published)
    assert "account closed" not in json.dumps(published)
    assert failed.account_id == CUSTOMER
    assert failed.amount.amount == BILLED
    assert failed.posting_system == "ledger"
    assert ledger.posting(event.transaction_id) is None
    assert entry_count(ledger) == 0

    # A redelivery of a refused transaction is answered from the idempotency record: the
    # same event again, and no second attempt at the posting system.
    monkeypatch.setattr(system, "post", lambda request: pytest.fail("posted again"))
    assert handle(batch(message(event, receive_count=2))) == {"batchItemFailures": []}
    assert [again["detail"] for again in drain(tap)] == [published["detail"]]


def test_an_unknown_account_is_posted_to_suspense(
    handle: Handle, tap: str, ledger: LedgerView
) -> None:
    event = approved(accountId="ACC-9999")
    assert event.enrichment.account_found is False

    assert handle(batch(message(event))) == {"batchItemFailures": []}

    (posted,) = posted_events(drain(tap))
    assert posted.account_id == SUSPENSE_ACCOUNT_ID == "SUSPENSE-EUR"
    assert ledger.balance(SUSPENSE_ACCOUNT_ID, "EUR").posted == -BILLED
    assert ledger.balance(CLEARING, "EUR").posted == BILLED
    assert ledger.ledger.account("ACC-9999") is None  # no account made on first touch
    assert ledger.trial_balance() == {"EUR": 0}


def test_a_directory_account_the_ledger_does_not_hold_is_posted_to_suspense(
    handle: Handle, tap: str, ledger: LedgerView, dynamodb: Any
) -> None:
    """Found by enrichment, never opened in the ledger: the money waits in suspense, and the
    event says where it went."""
    dynamodb.delete_item(
        TableName=BALANCES_TABLE, Key={"pk": {"S": f"ACCOUNT#{CUSTOMER}"}, "sk": {"S": "ACCOUNT"}}
    )
    event = approved()
    assert event.enrichment.account_found is True

    assert handle(batch(message(event))) == {"batchItemFailures": []}

    (posted,) = posted_events(drain(tap))
    assert (posted.account_id, posted.posting_status) == ("SUSPENSE-EUR", "POSTED")
    assert ledger.balance("SUSPENSE-EUR", "EUR").posted == -BILLED
    assert ledger.trial_balance() == {"EUR": 0}


def test_a_reused_transaction_id_with_other_content_ends_posting_failed_as_a_conflict(
    handle: Handle, tap: str, ledger: LedgerView, logs: Callable[[], str]
) -> None:
    """The ledger's own uniqueness, behind the idempotency layer (whose record may have
    expired): what was booked stays, the repeat is refused, and the log names the field."""
    event = approved()
    ledger.post(posting_request_for(approved(billingAmount={"amount": 99, "currency": "EUR"})))

    assert handle(batch(message(event))) == {"batchItemFailures": []}

    (published,) = drain(tap)
    failed = PostingFailed.model_validate(published["detail"])
    assert failed.reason_code is PostingFailureCode.CONFLICT
    assert "99" not in failed.reason
    assert ledger.balance(CUSTOMER, "EUR").posted == -99
    assert '"differing_fields":["amount"]' in logs().replace(" ", "")


def test_the_same_id_approved_again_with_other_content_is_a_conflict_not_a_replay(
    handle: Handle, tap: str, ledger: LedgerView, logs: Callable[[], str]
) -> None:
    """Inside the idempotency window too: the record holds the first approval's outcome,
    and a second approval of the id for another amount is not answered from it (that would
    publish TransactionPosted for money never booked). The ledger, asked, refuses it."""
    handle(batch(message(approved())))
    (first,) = posted_events(drain(tap))
    changed = approved(billingAmount={"amount": 99, "currency": "EUR"})

    assert handle(batch(message(changed, "msg-again"))) == {"batchItemFailures": []}

    (published,) = drain(tap)
    failed = PostingFailed.model_validate(published["detail"])
    assert failed.reason_code is PostingFailureCode.CONFLICT
    assert ledger.balance(CUSTOMER, "EUR").posted == -first.amount.amount
    assert '"differing_fields":["amount"]' in logs().replace(" ", "")
    # The same approval again is still a replay of the first outcome.
    handle(batch(message(approved(), "msg-third")))
    (replayed,) = posted_events(drain(tap))
    assert replayed == first


def test_a_refund_credits_the_customer(handle: Handle, tap: str, ledger: LedgerView) -> None:
    event = approved(processingCode="200000")

    assert handle(batch(message(event))) == {"batchItemFailures": []}

    (posted,) = posted_events(drain(tap))
    assert posted.direction == "CREDIT"
    assert ledger.balance(CUSTOMER, "EUR").posted == BILLED
    assert ledger.balance(CLEARING, "EUR").posted == -BILLED


def test_the_idempotency_record_is_keyed_by_the_transaction_id(
    handle: Handle, tap: str, dynamodb: Any, idempotency_table: str
) -> None:
    event = approved()

    handle(batch(message(event)))

    items = dynamodb.scan(TableName=idempotency_table)["Items"]
    assert len(items) == 1
    (item,) = items
    # Powertools keys the record "<function>.<qualified name>#<md5 of the JMESPath result>",
    # the digest written in base32 (domain.digest), as is the content's.
    key_hash = hashlib.md5(json.dumps(event.transaction_id).encode()).digest()  # noqa: S324
    assert item["id"]["S"].endswith(f"#{digest_text(key_hash)}")
    assert re.fullmatch("[a-z2-7]{26}", item["validation"]["S"])
    assert "handlers.posting" in item["id"]["S"]
    assert item["status"]["S"] == "COMPLETED"
    assert int(item["expiration"]["N"]) > 0
    saved = json.loads(item["data"]["S"])
    # The outcome, and the event to publish again should the bus refuse it.
    assert saved["outcome"] == "TransactionPosted"
    assert saved["status"] == "POSTED"
    (published,) = drain(tap)
    assert saved["event"] == published["detail"]
    assert TOKEN not in json.dumps(items)


def seconds_ago(seconds: float) -> str:
    """An authorization's transmission time, ``seconds`` before now."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def test_each_outcome_records_its_latency_from_the_authorization_once(
    handle: Handle, tap: str, logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    posted = approved(1, transmittedAt=seconds_ago(2.0))
    refused = approved(2, transmittedAt=seconds_ago(30.0))
    _, system = posting.posting_system()
    post = system.post

    def refuse_the_second(request: PostingRequest) -> PostingResult:
        if request.transaction_id == refused.transaction_id:
            raise PermanentPostingError("refused", PostingFailureCode.REFUSED_BY_CORE)
        return post(request)

    monkeypatch.setattr(system, "post", refuse_the_second)

    handle(batch(message(posted), message(refused)))
    handle(batch(message(posted, message_id="redelivered")))  # answered from the record

    output = logs()
    latencies = sorted(metric_values(output, "EndToEndLatency"))
    assert len(latencies) == 2  # one per outcome; the redelivery adds none
    # Milliseconds since each transmission time, give or take the test's own run time.
    assert 2_000 <= latencies[0] < 2_000 + 60_000
    assert 30_000 <= latencies[1] < 30_000 + 60_000
    assert metric_unit(output, "EndToEndLatency") == "Milliseconds"
    assert metric_values(output, "PostingsFailed") == [1.0]
