"""Ledger v1, no longer the pipeline's (the poster uses ``ledger_v2``) nor in the Lambda
package: kept as the baseline ``make bench-ledger`` compares ledger v2 with
(payment_local/ledger_bench.py), and tested for that. A ``PostingSystem`` on one DynamoDB table.

Layout (partition key ``pk``, sort key ``sk``, both strings)::

    POSTING#<transactionId>  POSTING                          the posting record
    ACCOUNT#<accountId>      ENTRY#<postedAt>#<transactionId>  one leg of a posting
    ACCOUNT#<accountId>      BALANCE#<currency>               posted, available, version

A posting is one ``TransactWriteItems`` of five items: the posting record (its condition is
the idempotency check), the two entries and the two balances. The legs are signed from each
account's point of view and always sum to zero, so the posted balances of a healthy ledger
sum to zero per currency. Balances are read, then written with their version as condition
(optimistic concurrency); a lost race is re-read and retried. Amounts are integer minor
units everywhere: Python ints in, DynamoDB ``N`` strings of integers out.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid5

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from payment_posting_functions.domain.ledger_v2.dynamodb import (
    _TRANSIENT_ERROR_CODES as TRANSIENT_ERROR_CODES,
)
from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import CurrencyCode, MinorUnits, Money, SignedMinorUnits
from payment_posting_functions.domain.posting import (
    Direction,
    PermanentPostingError,
    PostingFailureCode,
    PostingRequest,
    PostingResult,
    PostingStatus,
    PostingSystem,
    TransientPostingError,
)

# Fixed forever: posting ids are derived from transaction ids, so a repeat (which writes
# nothing and reads nothing back) still reports the id of the original posting.
POSTING_NAMESPACE = UUID("6f1c1f0e-8a53-4a1e-9d55-3f0f6f1b2c7d")

POSTING_PREFIX = "POSTING#"
POSTING_SK = "POSTING"
ACCOUNT_PREFIX = "ACCOUNT#"
ENTRY_PREFIX = "ENTRY#"
BALANCE_PREFIX = "BALANCE#"

# Positions in the posting transaction; DynamoDB reports cancellation reasons in this order.
_POSTING_ITEM = 0
_BALANCE_ITEMS = (3, 4)

# DynamoDB's "not now" codes: the same set ledger v2 retries on.
_TRANSIENT_ERROR_CODES = TRANSIENT_ERROR_CODES
_TRANSIENT_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})

_BALANCE_UPDATE = (
    "SET accountId = :account, currency = :currency,"
    " posted = :posted, available = :available, version = :version"
)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the ledger clock must return timezone-aware datetimes")
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    # Errors never echo input: entries carry account ids and amounts.
    model_config = RECORD_CONFIG


class Balance(_Model):
    """An account's balance in one currency: ``posted`` is booked money, ``available`` is
    posted less open holds. ``version`` counts writes; 0 means never written."""

    account_id: str
    currency: CurrencyCode
    posted: SignedMinorUnits = 0
    available: SignedMinorUnits = 0
    version: int = Field(default=0, ge=0)

    def moved(self, posted: int, available: int) -> Balance:
        return self.model_copy(
            update={
                "posted": self.posted + posted,
                "available": self.available + available,
                "version": self.version + 1,
            }
        )


class Entry(_Model):
    """One leg of a posting, signed from its account's side: a debit is negative."""

    account_id: str
    counter_account_id: str
    transaction_id: str
    amount: SignedMinorUnits
    currency: CurrencyCode
    posted_at: datetime

    @property
    def sort_key(self) -> str:
        return entry_sort_key(self.posted_at, self.transaction_id)


class PostingRecord(_Model):
    """What was posted for a transaction, kept so a repeat can be recognised and audited."""

    transaction_id: str
    posting_id: str
    account_id: str
    counter_account_id: str
    amount: MinorUnits
    currency: CurrencyCode
    direction: Direction
    posted_at: datetime


class Ledger(PostingSystem, Protocol):
    """What both ledgers offer besides posting: holds and the read side."""

    def hold(self, account_id: str, amount: Money) -> Balance: ...

    def release(self, account_id: str, amount: Money) -> Balance: ...

    def balance(self, account_id: str, currency: str) -> Balance: ...

    def entries(self, account_id: str) -> list[Entry]: ...

    def posting(self, transaction_id: str) -> PostingRecord | None: ...

    def balances(self) -> list[Balance]: ...

    def scan_entries(self) -> list[Entry]: ...

    def trial_balance(self) -> dict[str, int]: ...


def posting_id(transaction_id: str) -> str:
    return str(uuid5(POSTING_NAMESPACE, transaction_id))


def entry_sort_key(posted_at: datetime, transaction_id: str) -> str:
    # Fixed width (microseconds always present, always UTC) so that string order is time order.
    return f"{ENTRY_PREFIX}{_utc(posted_at).isoformat(timespec='microseconds')}#{transaction_id}"


def _check(request: PostingRequest) -> None:
    if request.amount.amount == 0:
        raise PermanentPostingError(
            f"transaction {request.transaction_id}: a posting of 0 {request.amount.currency}"
            " moves no money and is refused",
            PostingFailureCode.ZERO_AMOUNT,
        )
    if request.account_id == request.counter_account_id:
        raise PermanentPostingError(
            f"transaction {request.transaction_id}: account {request.account_id} is on both"
            " legs; a posting must move money between two different accounts",
            PostingFailureCode.SAME_ACCOUNT,
        )


def _check_hold(amount: Money) -> None:
    if amount.amount == 0:
        raise PermanentPostingError(
            f"a hold or release of 0 {amount.currency} is refused", PostingFailureCode.ZERO_AMOUNT
        )


def _record(request: PostingRequest, posted_at: datetime) -> PostingRecord:
    return PostingRecord(
        transaction_id=request.transaction_id,
        posting_id=posting_id(request.transaction_id),
        account_id=request.account_id,
        counter_account_id=request.counter_account_id,
        amount=request.amount.amount,
        currency=request.amount.currency,
        direction=request.direction,
        posted_at=posted_at,
    )


def legs(request: PostingRequest, posted_at: datetime) -> tuple[Entry, Entry]:
    """The customer's leg and the counter leg; their amounts always sum to zero."""
    amount = request.amount.amount
    customer = -amount if request.direction is Direction.DEBIT else amount
    return (
        Entry(
            account_id=request.account_id,
            counter_account_id=request.counter_account_id,
            transaction_id=request.transaction_id,
            amount=customer,
            currency=request.amount.currency,
            posted_at=posted_at,
        ),
        Entry(
            account_id=request.counter_account_id,
            counter_account_id=request.account_id,
            transaction_id=request.transaction_id,
            amount=-customer,
            currency=request.amount.currency,
            posted_at=posted_at,
        ),
    )


def _balance_order(balance: Balance) -> tuple[str, str]:
    return balance.account_id, balance.currency


def _entry_order(entry: Entry) -> tuple[str, str]:
    return entry.account_id, entry.sort_key


def _trial_balance(balances: list[Balance]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for balance in balances:
        totals[balance.currency] += balance.posted
    return dict(totals)


class InMemoryLedger:
    """The reference semantics of the ledger, for unit tests and as the specification of
    ``DynamoDBLedger``: the same operations, versions and orderings, without concurrency."""

    def __init__(self, *, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._postings: dict[str, PostingRecord] = {}
        self._entries: dict[str, dict[str, Entry]] = defaultdict(dict)
        self._balances: dict[tuple[str, str], Balance] = {}

    def post(self, request: PostingRequest) -> PostingResult:
        _check(request)
        # Read the clock before the repeat check, as DynamoDBLedger does, so that both
        # ledgers driven by equal clocks stamp equal times.
        posted_at = _utc(self._clock())
        if request.transaction_id in self._postings:
            return PostingResult(
                status=PostingStatus.ALREADY_POSTED,
                posting_id=posting_id(request.transaction_id),
            )
        record = _record(request, posted_at)
        for leg in legs(request, posted_at):
            self._entries[leg.account_id][leg.sort_key] = leg
            current = self.balance(leg.account_id, leg.currency)
            self._balances[leg.account_id, leg.currency] = current.moved(leg.amount, leg.amount)
        self._postings[request.transaction_id] = record
        return PostingResult(status=PostingStatus.POSTED, posting_id=record.posting_id)

    def hold(self, account_id: str, amount: Money) -> Balance:
        _check_hold(amount)
        return self._move_available(account_id, amount.currency, -amount.amount)

    def release(self, account_id: str, amount: Money) -> Balance:
        _check_hold(amount)
        return self._move_available(account_id, amount.currency, amount.amount)

    def _move_available(self, account_id: str, currency: str, delta: int) -> Balance:
        updated = self.balance(account_id, currency).moved(0, delta)
        self._balances[account_id, currency] = updated
        return updated

    def balance(self, account_id: str, currency: str) -> Balance:
        return self._balances.get(
            (account_id, currency), Balance(account_id=account_id, currency=currency)
        )

    def entries(self, account_id: str) -> list[Entry]:
        by_key = self._entries.get(account_id, {})
        return [by_key[key] for key in sorted(by_key)]

    def posting(self, transaction_id: str) -> PostingRecord | None:
        return self._postings.get(transaction_id)

    def balances(self) -> list[Balance]:
        return sorted(self._balances.values(), key=_balance_order)

    def scan_entries(self) -> list[Entry]:
        return [entry for account in sorted(self._entries) for entry in self.entries(account)]

    def trial_balance(self) -> dict[str, int]:
        return _trial_balance(self.balances())


class DynamoDBLedger:
    """The ledger on one DynamoDB table (see the module docstring for its layout).

    ``post`` is atomic and idempotent by transaction id. A balance changed by someone else
    between read and write is re-read and the write retried, up to ``max_conflict_retries``
    times after the first attempt (then ``TransientPostingError``), with jittered exponential
    backoff so that writers racing for the same account (typically settlement) spread out.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Callable[[], datetime] = _now,
        max_conflict_retries: int = 5,
        backoff_base_s: float = 0.01,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``client`` is a boto3 DynamoDB client (the low-level one: numbers stay strings)."""
        self._client = client
        self._table_name = table_name
        self._clock = clock
        self._max_conflict_retries = max_conflict_retries
        self._backoff_base_s = backoff_base_s
        self._sleep = sleep

    # -- writes ---------------------------------------------------------------------------

    def post(self, request: PostingRequest) -> PostingResult:
        _check(request)
        # One timestamp for every attempt: a retry is the same posting, not a later one.
        posted_at = _utc(self._clock())
        record = _record(request, posted_at)
        entries = legs(request, posted_at)
        for attempt in range(self._max_conflict_retries + 1):
            self._back_off(attempt)
            with _posting_errors():
                balances = [self._read_balance(e.account_id, e.currency) for e in entries]
                items = [
                    self._put_posting(record),
                    *(self._put_entry(entry) for entry in entries),
                    *(
                        self._update_balance(current, current.moved(e.amount, e.amount))
                        for current, e in zip(balances, entries, strict=True)
                    ),
                ]
                try:
                    self._client.transact_write_items(TransactItems=items)
                except ClientError as error:
                    if _error_code(error) != "TransactionCanceledException":
                        raise
                    reasons = _cancellation_codes(error)
                    # The posting record decides first: a repeat that also raced is a repeat.
                    if reasons.get(_POSTING_ITEM) == "ConditionalCheckFailed":
                        return PostingResult(
                            status=PostingStatus.ALREADY_POSTED, posting_id=record.posting_id
                        )
                    if _lost_race(reasons):
                        continue
                    if _TRANSIENT_REASONS.intersection(reasons.values()):
                        raise TransientPostingError(
                            f"transaction {request.transaction_id}: DynamoDB throttled the"
                            f" posting ({sorted(set(reasons.values()))})"
                        ) from error
                    raise
                return PostingResult(status=PostingStatus.POSTED, posting_id=record.posting_id)
        raise self._gave_up(f"transaction {request.transaction_id}")

    def hold(self, account_id: str, amount: Money) -> Balance:
        """Set ``amount`` aside: available goes down, posted stays."""
        _check_hold(amount)
        return self._move_available(account_id, amount.currency, -amount.amount)

    def release(self, account_id: str, amount: Money) -> Balance:
        """Give back a hold: available goes up, posted stays."""
        _check_hold(amount)
        return self._move_available(account_id, amount.currency, amount.amount)

    def _move_available(self, account_id: str, currency: str, delta: int) -> Balance:
        for attempt in range(self._max_conflict_retries + 1):
            self._back_off(attempt)
            with _posting_errors():
                current = self._read_balance(account_id, currency)
                updated = current.moved(0, delta)
                try:
                    self._client.update_item(**self._update_balance(current, updated)["Update"])
                except ClientError as error:
                    if _error_code(error) != "ConditionalCheckFailedException":
                        raise
                    continue
                return updated
        raise self._gave_up(f"account {account_id} ({currency})")

    def _back_off(self, attempt: int) -> None:
        if attempt:
            # Full jitter: writers racing for the same balance must not retry in lockstep.
            ceiling = self._backoff_base_s * 2 ** (attempt - 1)
            self._sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter, not cryptography)

    def _gave_up(self, subject: str) -> TransientPostingError:
        # Transient: the queue redelivers later, when the contention has likely passed.
        return TransientPostingError(
            f"{subject}: the balance kept changing concurrently;"
            f" gave up after {self._max_conflict_retries} retries"
        )

    def _put_posting(self, record: PostingRecord) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table_name,
                "Item": {
                    "pk": _s(POSTING_PREFIX + record.transaction_id),
                    "sk": _s(POSTING_SK),
                    "transactionId": _s(record.transaction_id),
                    "postingId": _s(record.posting_id),
                    "accountId": _s(record.account_id),
                    "counterAccountId": _s(record.counter_account_id),
                    "amount": _n(record.amount),
                    "currency": _s(record.currency),
                    "direction": _s(record.direction.value),
                    "postedAt": _s(record.posted_at.isoformat(timespec="microseconds")),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _put_entry(self, entry: Entry) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table_name,
                "Item": {
                    "pk": _s(ACCOUNT_PREFIX + entry.account_id),
                    "sk": _s(entry.sort_key),
                    "accountId": _s(entry.account_id),
                    "counterAccountId": _s(entry.counter_account_id),
                    "transactionId": _s(entry.transaction_id),
                    "amount": _n(entry.amount),
                    "currency": _s(entry.currency),
                    "postedAt": _s(entry.posted_at.isoformat(timespec="microseconds")),
                },
                # Entries are append-only; the key holds the transaction id, so this can only
                # fail if the posting record was lost, and then nothing should be written.
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _update_balance(self, current: Balance, updated: Balance) -> dict[str, Any]:
        values = {
            ":account": _s(updated.account_id),
            ":currency": _s(updated.currency),
            ":posted": _n(updated.posted),
            ":available": _n(updated.available),
            ":version": _n(updated.version),
        }
        if current.version == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "version = :expected"
            values[":expected"] = _n(current.version)
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": _balance_key(updated.account_id, updated.currency),
                "UpdateExpression": _BALANCE_UPDATE,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }

    # -- reads ----------------------------------------------------------------------------

    def _read_balance(self, account_id: str, currency: str) -> Balance:
        # Strongly consistent: an eventually consistent read would just lose the race later.
        item = self._client.get_item(
            TableName=self._table_name,
            Key=_balance_key(account_id, currency),
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return Balance(account_id=account_id, currency=currency)
        return _balance(item)

    def balance(self, account_id: str, currency: str) -> Balance:
        return self._read_balance(account_id, currency)

    def entries(self, account_id: str) -> list[Entry]:
        """The account's entries in posting order (time, then transaction id)."""
        return [
            _entry(item)
            for item in self._pages(
                "query",
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": _s(ACCOUNT_PREFIX + account_id),
                    ":prefix": _s(ENTRY_PREFIX),
                },
                ConsistentRead=True,
            )
        ]

    def posting(self, transaction_id: str) -> PostingRecord | None:
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"pk": _s(POSTING_PREFIX + transaction_id), "sk": _s(POSTING_SK)},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else _posting_record(item)

    def balances(self) -> list[Balance]:
        """Every balance by account and currency; a full table scan, for reconciliation and
        tests, never the hot path."""
        return sorted(
            (_balance(item) for item in self._scan_prefix(BALANCE_PREFIX)), key=_balance_order
        )

    def scan_entries(self) -> list[Entry]:
        """Every entry by account, each account's in posting order; a full table scan, for
        reporting and tests."""
        # A scan promises no order; sorting here gives reports the order entries() gives.
        return sorted((_entry(item) for item in self._scan_prefix(ENTRY_PREFIX)), key=_entry_order)

    def trial_balance(self) -> dict[str, int]:
        """Posted balances summed per currency; every total is 0 in a healthy ledger."""
        return _trial_balance(self.balances())

    def _scan_prefix(self, prefix: str) -> Iterator[dict[str, Any]]:
        return self._pages(
            "scan",
            FilterExpression="begins_with(sk, :prefix)",
            ExpressionAttributeValues={":prefix": _s(prefix)},
            ConsistentRead=True,
        )

    def _pages(self, operation: str, **request: Any) -> Iterator[dict[str, Any]]:
        call = getattr(self._client, operation)
        start: dict[str, Any] | None = None
        while True:
            page = call(
                TableName=self._table_name,
                **request,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


@contextmanager
def _posting_errors() -> Iterator[None]:
    """Turns the errors DynamoDB means as "try later" into ``TransientPostingError``.

    Anything else (a validation error, a missing table, denied access) is a bug or a broken
    deployment, not the posting's fault: it propagates as is, fails the invocation loudly and
    the message goes back to the queue, rather than marking a good payment failed for good.
    """
    try:
        yield
    except ClientError as error:
        if _error_code(error) in _TRANSIENT_ERROR_CODES:
            raise TransientPostingError(f"DynamoDB: {_error_code(error)}") from error
        raise
    except BotoCoreError as error:  # connection failures and timeouts
        raise TransientPostingError(f"DynamoDB unreachable: {error}") from error


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cancellation_codes(error: ClientError) -> dict[int, str]:
    """Per transaction item, why it was cancelled; items that were fine are left out."""
    reasons = error.response.get("CancellationReasons") or []
    return {
        index: str(reason.get("Code"))
        for index, reason in enumerate(reasons)
        if reason.get("Code") not in (None, "None")
    }


def _lost_race(reasons: dict[int, str]) -> bool:
    """A balance changed between our read and our write, or another transaction (perhaps a
    concurrent delivery of this very posting) held one of our items: read again, retry."""
    return "TransactionConflict" in reasons.values() or any(
        reasons.get(i) == "ConditionalCheckFailed" for i in _BALANCE_ITEMS
    )


def _balance_key(account_id: str, currency: str) -> dict[str, Any]:
    return {"pk": _s(ACCOUNT_PREFIX + account_id), "sk": _s(BALANCE_PREFIX + currency)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    # Only ever an int: str() of an int is exact, where a float would round.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ledger amounts are integers, got {type(value).__name__}")
    return {"N": str(value)}


def _int(attribute: dict[str, str]) -> int:
    # int() refuses "1.5" and "1E3", so a non-integral number in the table fails loudly.
    return int(attribute["N"])


def _balance(item: dict[str, Any]) -> Balance:
    return Balance(
        account_id=item["accountId"]["S"],
        currency=item["currency"]["S"],
        posted=_int(item["posted"]),
        available=_int(item["available"]),
        version=_int(item["version"]),
    )


def _entry(item: dict[str, Any]) -> Entry:
    return Entry(
        account_id=item["accountId"]["S"],
        counter_account_id=item["counterAccountId"]["S"],
        transaction_id=item["transactionId"]["S"],
        amount=_int(item["amount"]),
        currency=item["currency"]["S"],
        posted_at=datetime.fromisoformat(item["postedAt"]["S"]),
    )


def _posting_record(item: dict[str, Any]) -> PostingRecord:
    return PostingRecord(
        transaction_id=item["transactionId"]["S"],
        posting_id=item["postingId"]["S"],
        account_id=item["accountId"]["S"],
        counter_account_id=item["counterAccountId"]["S"],
        amount=_int(item["amount"]),
        currency=item["currency"]["S"],
        direction=Direction(item["direction"]["S"]),
        posted_at=datetime.fromisoformat(item["postedAt"]["S"]),
    )
