"""``DynamoDBLedger``: ledger v2 on two tables, with the semantics of ``InMemoryLedger``.

Journal table (``pk``, ``sk``), immutable, written with conditional puts only::

    TRANSFER#<id>                 TRANSFER                 the booked transfer and its hash
    LINK#<link>                   LINK                     the id of the transfer with that link
    ACCOUNT#<customer>            ENTRY#<ts>#<transferId>  a customer's entry
    ACCOUNT#<house>#<shard>       ENTRY#<ts>#<transferId>  a house account's entry

Balances table (``pk``, ``sk``), mutable, updated with ``ADD`` and conditions::

    ACCOUNT#<id>      ACCOUNT    settings; for a customer also posted, pendingDebits,
                                 pendingCredits and headroom (= available + credit limit)
    HOUSE#<id>        SHARD#<nn> posted, pendingDebits, pendingCredits of one house shard
    PENDING#<id>      STATE      a pending's remaining and status; ``expiryBucket`` and
                                 ``expiresAt`` (the sparse ``expiry`` index) while it can expire

A transfer is one ``TransactWriteItems``: the transfer record and its entries (each
``attribute_not_exists``), an ``ADD`` to each customer account whose condition carries the
account's rules (exists, currency, status, ``headroom >= amount`` for a guarded debit), an
``ADD`` to the house shard of the transfer id (no condition: nothing to check there), and for a
post or void the pending state (``remaining`` as read, status open). Customer balances are
never read before the write; a post or void reads its pending state first (its own item, not
shared). Only when DynamoDB cancels the transaction does the ledger read, to tell a
redelivery from a conflict and to name the refusal, exactly as the reference would.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payment_posting_functions.domain.digest import digest_text
from payment_posting_functions.domain.ledger_v2 import rules
from payment_posting_functions.domain.ledger_v2.house import (
    DEFAULT_SHARDS,
    is_house_account,
    shard_of,
)
from payment_posting_functions.domain.ledger_v2.house_lease import HouseShardLease
from payment_posting_functions.domain.ledger_v2.model import (
    Account,
    AccountError,
    AccountKind,
    AccountStatus,
    Balance,
    BookedTransfer,
    Entry,
    PendingState,
    PendingStatus,
    RefusalCode,
    StatementPage,
    Transfer,
    TransferKind,
    TransferRefused,
    TransferResult,
    TransferStatus,
    TrialBalance,
)
from payment_posting_functions.domain.ledger_v2.reference import (
    check_status_change,
    excess_transfer,
    expiry,
    expiry_time,
    new_account,
    opens_on_first_use,
    repeat_result,
    same_account,
    statement_bounds,
)
from payment_posting_functions.domain.posting import TransientPostingError

EXPIRY_INDEX = "expiry"
# The longest a booking may take from its timestamp to its commit: the writers' function
# timeout (the expiry sweeper's 60 s; the poster's is 30 s).
DEFAULT_IN_FLIGHT_S = 60.0
EXPIRY_BUCKETS = 8
_ACCOUNT_SK = "ACCOUNT"
_TRANSFER_SK = "TRANSFER"
_LINK_PREFIX = "LINK#"
_LINK_SK = "LINK"
_PENDING_SK = "STATE"

_TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
# Per-item cancellation reasons that mean "not now": retried with jitter.
_RETRY_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
_RESOLVED_AS = {
    TransferKind.VOID_PENDING: PendingStatus.VOIDED,
    TransferKind.EXPIRE_PENDING: PendingStatus.EXPIRED,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ledger amounts are integers, got {type(value).__name__}")
    return {"N": str(value)}


def _int(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def _iso(value: datetime) -> str:
    return rules.utc(value).isoformat(timespec="microseconds")


def content_hash(text: str) -> str:
    """What a record's ``hash`` attribute holds: an entry or transfer changed in place no
    longer matches it (see ``DynamoDBLedger.tampered``). Base32, as ``domain.digest`` says."""
    return digest_text(hashlib.sha256(text.encode()).digest())


@dataclass
class _BalanceChange:
    """The one update a transaction makes to one balance item (DynamoDB allows one)."""

    key: dict[str, Any]
    currency: str
    house: bool
    posted: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    # Customers only: what the condition requires of the account.
    debit: bool = False  # a new debit: the account must be open, not just not closed
    need_headroom: int = 0


@dataclass
class _Plan:
    items: list[dict[str, Any]] = field(default_factory=list)
    linked: tuple[str, ...] = ()


class DynamoDBLedger:
    """``client`` is a low-level boto3 DynamoDB client (numbers stay strings)."""

    def __init__(
        self,
        client: Any,
        journal_table: str,
        balances_table: str,
        *,
        clock: Callable[[], datetime] = _now,
        house_shards: int = DEFAULT_SHARDS,
        max_retries: int = 6,
        backoff_base_s: float = 0.01,
        sleep: Callable[[float], None] = time.sleep,
        house_shard_leases: bool = True,
    ) -> None:
        """``house_shard_leases``: put this writer's house legs on a shard it leases (no
        house conflicts between writers while there are as many shards as writers; see
        ``house_lease``); False: on the shard of each transfer id's hash."""
        self._client = client
        self._journal = journal_table
        self._balances = balances_table
        self._clock = clock
        self._shards = house_shards
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._sleep = sleep
        # House accounts never close, so once seen they are known for the process's life.
        self._house: dict[str, Account] = {}
        self.house_lease = (
            HouseShardLease(client, balances_table, house_shards) if house_shard_leases else None
        )

    # -- accounts -------------------------------------------------------------------------

    def open_account(self, account_id: str, currency: str, *, credit_limit: int = 0) -> Account:
        wanted = new_account(account_id, currency, credit_limit)
        # An UpdateItem that creates (never a PutItem): whoever opens accounts, the poster
        # opening a house account on first use included, needs no action beyond the
        # UpdateItem and GetItem it has on the balances table already.
        item = {k: v for k, v in account_item(wanted).items() if k not in ("pk", "sk")}
        with _dynamodb_errors():
            try:
                self._client.update_item(
                    TableName=self._balances,
                    Key={"pk": _s("ACCOUNT#" + account_id), "sk": _s(_ACCOUNT_SK)},
                    UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(item))),
                    ConditionExpression="attribute_not_exists(pk)",
                    ExpressionAttributeNames={f"#a{i}": name for i, name in enumerate(item)},
                    ExpressionAttributeValues={
                        f":a{i}": value for i, value in enumerate(item.values())
                    },
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                existing = self.account(account_id)
                assert existing is not None
                return same_account(existing, wanted)
        return wanted

    def account(self, account_id: str) -> Account | None:
        item = self._get(self._balances, "ACCOUNT#" + account_id, _ACCOUNT_SK)
        return None if item is None else _account(item)

    def freeze(self, account_id: str) -> Account:
        return self._set_status(account_id, AccountStatus.FROZEN)

    def unfreeze(self, account_id: str) -> Account:
        return self._set_status(account_id, AccountStatus.OPEN)

    def close(self, account_id: str) -> Account:
        return self._set_status(account_id, AccountStatus.CLOSED)

    def _set_status(self, account_id: str, status: AccountStatus) -> Account:
        condition = "attribute_exists(pk) AND kind = :customer AND #status <> :closed"
        if status is AccountStatus.CLOSED:
            condition += " AND posted = :zero AND pendingDebits = :zero AND pendingCredits = :zero"
        with _dynamodb_errors():
            try:
                item = self._client.update_item(
                    TableName=self._balances,
                    Key={"pk": _s("ACCOUNT#" + account_id), "sk": _s(_ACCOUNT_SK)},
                    UpdateExpression="SET #status = :status",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":status": _s(status.value),
                        ":closed": _s(AccountStatus.CLOSED.value),
                        ":customer": _s(AccountKind.CUSTOMER.value),
                        **({":zero": _n(0)} if status is AccountStatus.CLOSED else {}),
                    },
                    ReturnValues="ALL_NEW",
                )["Attributes"]
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                check_status_change(account_id, self.account(account_id))
                raise AccountError(f"account {account_id} is not empty and cannot close") from None
        return _account(item)

    # -- transfers ------------------------------------------------------------------------

    def create_transfer(self, transfer: Transfer) -> TransferResult:
        """Book a transfer once; a redelivery is ALREADY_EXISTS. Raises TransferRefused, or
        TransientPostingError when DynamoDB stays busy through every retry."""
        rules.check_submitted(transfer)
        return self._create(transfer, rules.utc(self._clock()))

    def expire_due(
        self, now: datetime | None = None, *, limit: int | None = None
    ) -> list[TransferResult]:
        """The sweeper: expire every open pending whose timeout has passed at ``now``, the
        earliest first; with ``limit``, at most that many (the rest wait for the next sweep)."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        at = rules.utc(now if now is not None else self._clock())
        due: list[PendingState] = []
        for bucket in range(EXPIRY_BUCKETS):
            # The index keeps each bucket in expiry order: the earliest ``limit`` of all
            # buckets are among the earliest ``limit`` of each.
            items = self._query(
                self._balances,
                IndexName=EXPIRY_INDEX,
                KeyConditionExpression="expiryBucket = :bucket AND expiresAt <= :now",
                ExpressionAttributeValues={
                    ":bucket": _s(f"EXPIRY#{bucket:02d}"),
                    ":now": _s(_iso(at)),
                },
                **({"Limit": limit} if limit is not None else {}),
            )
            due += (_pending(item) for item in itertools.islice(items, limit))
        due.sort(key=lambda p: (p.expires_at, p.pending_id))
        results = []
        for pending in due[:limit]:
            try:
                results.append(self._create(expiry(pending), at))
            except TransferRefused as refused:
                # Posted or voided since the index was read: nothing left to expire.
                if refused.reason is not RefusalCode.PENDING_ALREADY_RESOLVED:
                    raise
        return results

    def _create(self, transfer: Transfer, now: datetime) -> TransferResult:
        rules.static_refusal(transfer)
        for attempt in range(self._max_retries + 1):
            self._back_off(attempt)
            with _dynamodb_errors():
                try:
                    plan = self._plan(transfer, now)
                except TransferRefused:
                    plan = None
                if plan is not None:
                    try:
                        self._client.transact_write_items(TransactItems=plan.items)
                    except ClientError as error:
                        if _error_code(error) in _TRANSIENT_ERROR_CODES:
                            continue
                        if _error_code(error) != "TransactionCanceledException":
                            raise
                        reasons = _cancellation_codes(error)
                        if "ConditionalCheckFailed" not in reasons and _RETRY_REASONS.intersection(
                            reasons
                        ):
                            continue
                        if "ConditionalCheckFailed" not in reasons:
                            raise
                    else:
                        return TransferResult(
                            status=TransferStatus.CREATED,
                            transfer_id=transfer.transfer_id,
                            linked=plan.linked,
                        )
                # A refusal, a redelivery, or a race lost: read what is there and decide.
                result = self._diagnose(transfer, now)
                if result is not None:
                    return result
        raise TransientPostingError(
            f"transfer {transfer.transfer_id}: DynamoDB stayed busy;"
            f" gave up after {self._max_retries} retries"
        )

    def _back_off(self, attempt: int) -> None:
        if attempt:
            # Full jitter, so writers that collided do not collide again in lockstep.
            ceiling = self._backoff_base_s * 2 ** (attempt - 1)
            self._sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter, not cryptography)

    # The write: no read of a customer balance; a refusal found while planning sends the
    # transfer to ``_diagnose``, which checks in the reference's order.

    def _plan(self, transfer: Transfer, now: datetime) -> _Plan:
        if transfer.kind in (TransferKind.SINGLE, TransferKind.PENDING):
            return self._plan_move(transfer, now)
        return self._plan_resolution(transfer, now)

    def _plan_move(self, transfer: Transfer, now: datetime) -> _Plan:
        debit_id, credit_id = transfer.debit_account_id, transfer.credit_account_id
        assert debit_id is not None
        assert credit_id is not None
        for account_id in (debit_id, credit_id):
            if is_house_account(account_id):
                self._house_account_or_refuse(transfer, account_id)
        if transfer.corrects is not None:
            rules.check_correction(transfer, self.lookup_transfer(transfer.corrects))
        guard = 0 if transfer.forced or is_house_account(debit_id) else transfer.amount.amount
        entries = rules.booking_entries(transfer, debit_id, credit_id, now, None)
        booked = BookedTransfer(
            transfer=transfer,
            timestamp=now,
            debit_account_id=debit_id,
            credit_account_id=credit_id,
            amount=transfer.amount.amount,
        )
        changes: dict[str, _BalanceChange] = {}
        house_shard = self._house_shard(transfer.transfer_id)
        self._add_entries(changes, entries, house_shard, debit=True, need_headroom=guard)
        items = [self._put_transfer(booked), *(self._put_entry(e) for e in entries)]
        if transfer.link is not None:
            items.append(self._put_link(transfer))
        if transfer.kind is TransferKind.PENDING:
            items.append(self._put_pending(transfer, debit_id, credit_id, now))
        items += [self._update_balance(change) for change in changes.values()]
        return _Plan(items=items)

    def _plan_resolution(self, transfer: Transfer, now: datetime) -> _Plan:
        assert transfer.pending_id is not None
        pending = self.pending(transfer.pending_id)
        if pending is None:
            raise TransferRefused(RefusalCode.PENDING_NOT_FOUND, transfer.transfer_id)
        resolution = rules.resolve(transfer, pending, now)
        debit_id, credit_id = pending.debit_account_id, pending.credit_account_id
        entries = rules.booking_entries(transfer, debit_id, credit_id, now, resolution)
        booked = BookedTransfer(
            transfer=transfer,
            timestamp=now,
            debit_account_id=debit_id,
            credit_account_id=credit_id,
            amount=resolution.posted or resolution.released,
        )
        changes: dict[str, _BalanceChange] = {}
        house_shard = self._house_shard(transfer.transfer_id)
        self._add_entries(changes, entries, house_shard, debit=False, need_headroom=0)
        items = [*(self._put_entry(e) for e in entries)]
        excess = excess_transfer(transfer, pending, resolution.excess)
        if excess is not None:
            excess_entries = rules.booking_entries(excess, debit_id, credit_id, now, None)
            guard = 0 if excess.forced or is_house_account(debit_id) else resolution.excess
            self._add_entries(changes, excess_entries, house_shard, debit=True, need_headroom=guard)
            booked = booked.model_copy(update={"linked": (excess.transfer_id,)})
            items += [
                self._put_transfer(
                    BookedTransfer(
                        transfer=excess,
                        timestamp=now,
                        debit_account_id=debit_id,
                        credit_account_id=credit_id,
                        amount=resolution.excess,
                    )
                ),
                *(self._put_entry(e) for e in excess_entries),
            ]
        items.insert(0, self._put_transfer(booked))
        remaining = pending.remaining - resolution.consumed
        status = _RESOLVED_AS.get(transfer.kind, PendingStatus.POSTED)
        items.append(self._update_pending(pending, remaining, status))
        items += [self._update_balance(change) for change in changes.values()]
        return _Plan(items=items, linked=booked.linked)

    def _house_account_or_refuse(self, transfer: Transfer, account_id: str) -> Account:
        account = self._house.get(account_id)
        if account is None:
            account = self.account(account_id)
            if account is None and opens_on_first_use(account_id, transfer):
                account = self.open_account(account_id, transfer.amount.currency)
            if account is None:
                raise TransferRefused(
                    RefusalCode.ACCOUNT_NOT_FOUND, transfer.transfer_id, account_id=account_id
                )
            self._house[account_id] = account
        if account.currency != transfer.amount.currency:
            raise TransferRefused(
                RefusalCode.CURRENCY_MISMATCH, transfer.transfer_id, account_id=account_id
            )
        return account

    def _house_shard(self, transfer_id: str) -> int:
        """The balance shard of this transfer's house legs: the writer's leased shard, or
        the transfer id's hash shard (entries stay on the hash shard either way)."""
        if self.house_lease is not None:
            return self.house_lease.shard_for(transfer_id)
        return shard_of(transfer_id, self._shards)

    def _add_entries(
        self,
        changes: dict[str, _BalanceChange],
        entries: tuple[Entry, Entry],
        house_shard: int,
        *,
        debit: bool,
        need_headroom: int,
    ) -> None:
        for position, entry in enumerate(entries):
            house = is_house_account(entry.account_id)
            if house:
                key = {
                    "pk": _s(f"HOUSE#{entry.account_id}"),
                    "sk": _s(f"SHARD#{house_shard:02d}"),
                }
            else:
                key = {"pk": _s("ACCOUNT#" + entry.account_id), "sk": _s(_ACCOUNT_SK)}
            name = key["pk"]["S"] + "/" + key["sk"]["S"]
            change = changes.setdefault(name, _BalanceChange(key, entry.currency, house))
            change.posted += entry.posted
            change.pending_debits += entry.pending_debits
            change.pending_credits += entry.pending_credits
            if position == 0 and debit:
                change.debit = True
                change.need_headroom += need_headroom

    def _put_transfer(self, booked: BookedTransfer) -> dict[str, Any]:
        record = booked.model_dump_json()
        return {
            "Put": {
                "TableName": self._journal,
                "Item": {
                    "pk": _s("TRANSFER#" + booked.transfer.transfer_id),
                    "sk": _s(_TRANSFER_SK),
                    "record": _s(record),
                    "hash": _s(content_hash(record)),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _put_link(self, transfer: Transfer) -> dict[str, Any]:
        """The link's index item, in the journal (put-only like the rest of it): written in
        the transfer's own transaction, so a transfer and its link exist together or not."""
        assert transfer.link is not None
        return {
            "Put": {
                "TableName": self._journal,
                "Item": {
                    "pk": _s(_LINK_PREFIX + transfer.link),
                    "sk": _s(_LINK_SK),
                    "transferId": _s(transfer.transfer_id),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _entry_pk(self, entry: Entry) -> str:
        if is_house_account(entry.account_id):
            shard = shard_of(entry.transfer_id, self._shards)
            return f"ACCOUNT#{entry.account_id}#{shard:02d}"
        return "ACCOUNT#" + entry.account_id

    def _put_entry(self, entry: Entry) -> dict[str, Any]:
        record = entry.model_dump_json()
        return {
            "Put": {
                "TableName": self._journal,
                "Item": {
                    "pk": _s(self._entry_pk(entry)),
                    "sk": _s(rules.entry_sort_key(entry.timestamp, entry.transfer_id)),
                    "record": _s(record),
                    "hash": _s(content_hash(record)),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _put_pending(
        self, transfer: Transfer, debit_id: str, credit_id: str, now: datetime
    ) -> dict[str, Any]:
        """The pending's state item, created by an UpdateItem that requires it absent: the
        same effect as a conditional put, and the posting role needs no PutItem on the
        balances table (where a put could replace an account's balance item whole)."""
        fields: dict[str, dict[str, str]] = {
            "pendingId": _s(transfer.transfer_id),
            "debitAccountId": _s(debit_id),
            "creditAccountId": _s(credit_id),
            "currency": _s(transfer.amount.currency),
            "amount": _n(transfer.amount.amount),
            "remaining": _n(transfer.amount.amount),
            "status": _s(PendingStatus.OPEN.value),
        }
        expires_at = expiry_time(transfer, now)
        if expires_at is not None:
            bucket = shard_of(transfer.transfer_id, EXPIRY_BUCKETS)
            fields["expiresAt"] = _s(_iso(expires_at))
            fields["expiryBucket"] = _s(f"EXPIRY#{bucket:02d}")
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        return {
            "Update": {
                "TableName": self._balances,
                "Key": {"pk": _s("PENDING#" + transfer.transfer_id), "sk": _s(_PENDING_SK)},
                "UpdateExpression": "SET " + ", ".join(f"{alias} = :v{n}"
                                                       for n, alias in enumerate(names)),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":v{n}": value
                                              for n, value in enumerate(fields.values())},
            }
        }  # fmt: skip

    def _update_pending(
        self, pending: PendingState, remaining: int, status: PendingStatus
    ) -> dict[str, Any]:
        resolved = remaining == 0
        expression = "SET remaining = :remaining, #status = :status"
        if resolved:
            # Out of the sparse index: a resolved pending is never swept.
            expression += " REMOVE expiryBucket"
        return {
            "Update": {
                "TableName": self._balances,
                "Key": {"pk": _s("PENDING#" + pending.pending_id), "sk": _s(_PENDING_SK)},
                "UpdateExpression": expression,
                "ConditionExpression": "#status = :open AND remaining = :seen",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":remaining": _n(remaining),
                    ":status": _s((status if resolved else PendingStatus.OPEN).value),
                    ":open": _s(PendingStatus.OPEN.value),
                    ":seen": _n(pending.remaining),
                },
            }
        }

    def _update_balance(self, change: _BalanceChange) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":posted": _n(change.posted),
            ":pd": _n(change.pending_debits),
            ":pc": _n(change.pending_credits),
            ":currency": _s(change.currency),
        }
        if change.house:
            return {
                "Update": {
                    "TableName": self._balances,
                    "Key": change.key,
                    "UpdateExpression": "SET currency = :currency"
                    " ADD posted :posted, pendingDebits :pd, pendingCredits :pc",
                    "ExpressionAttributeValues": values,
                }
            }
        values[":headroom"] = _n(change.posted - change.pending_debits)
        condition = "attribute_exists(pk) AND currency = :currency"
        if change.debit:
            condition += " AND #status = :open"
            values[":open"] = _s(AccountStatus.OPEN.value)
        else:
            condition += " AND #status <> :closed"
            values[":closed"] = _s(AccountStatus.CLOSED.value)
        if change.need_headroom:
            condition += " AND headroom >= :need"
            values[":need"] = _n(change.need_headroom)
        return {
            "Update": {
                "TableName": self._balances,
                "Key": change.key,
                "UpdateExpression": "ADD posted :posted, pendingDebits :pd,"
                " pendingCredits :pc, headroom :headroom",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    def _diagnose(self, transfer: Transfer, now: datetime) -> TransferResult | None:
        """After a cancelled write or a refusal found while planning: the reference's checks
        in the reference's order, on consistent reads. None: nothing refuses it now (a race
        was lost), so the caller writes again."""
        booked = self.lookup_transfer(transfer.transfer_id)
        if booked is not None:
            return repeat_result(booked, transfer)
        tid = transfer.transfer_id
        if transfer.kind in (TransferKind.SINGLE, TransferKind.PENDING):
            if transfer.link is not None and self._linked_id(transfer.link) is not None:
                raise TransferRefused(RefusalCode.LINK_IN_USE, tid)
            assert transfer.debit_account_id is not None
            assert transfer.credit_account_id is not None
            debit = self.account(transfer.debit_account_id)
            credit = self.account(transfer.credit_account_id)
            rules.check_accounts(transfer, debit, credit)
            assert debit is not None
            if transfer.corrects is not None:
                rules.check_correction(transfer, self.lookup_transfer(transfer.corrects))
            if rules.guarded(transfer, debit):
                self._check_headroom(tid, debit.account_id, transfer.amount.amount)
            return None
        assert transfer.pending_id is not None
        pending = self.pending(transfer.pending_id)
        if pending is None:
            raise TransferRefused(RefusalCode.PENDING_NOT_FOUND, tid)
        resolution = rules.resolve(transfer, pending, now)
        if resolution.excess:
            debit = self.account(pending.debit_account_id)
            assert debit is not None
            if debit.status is not AccountStatus.OPEN:
                raise TransferRefused(RefusalCode.ACCOUNT_FROZEN, tid, account_id=debit.account_id)
            if debit.kind is AccountKind.CUSTOMER and not transfer.forced:
                self._check_headroom(tid, debit.account_id, resolution.excess)
        return None

    def _check_headroom(self, transfer_id: str, account_id: str, amount: int) -> None:
        item = self._get(self._balances, "ACCOUNT#" + account_id, _ACCOUNT_SK)
        if item is not None and _int(item, "headroom") < amount:
            raise TransferRefused(
                RefusalCode.EXCEEDS_CREDIT_LIMIT, transfer_id, account_id=account_id
            )

    # -- reads ----------------------------------------------------------------------------

    def balance(self, account_id: str) -> Balance:
        account = self.account(account_id)
        if account is None:
            raise AccountError(f"account {account_id} does not exist")
        if account.kind is AccountKind.CUSTOMER:
            item = self._get(self._balances, "ACCOUNT#" + account_id, _ACCOUNT_SK)
            assert item is not None
            return _balance(account_id, account.currency, [item])
        return _balance(account_id, account.currency, self._house_shards(account_id))

    def _house_shards(self, account_id: str) -> list[dict[str, Any]]:
        # Consistent snapshots of 25 shards at a time: TransactGetItems takes 100 items on AWS
        # since 2022 but 25 on moto; beyond one call the sum is as of a short window, not an
        # instant (the sweep of a house balance is a report, not a posting-path read).
        keys = [
            {"pk": _s(f"HOUSE#{account_id}"), "sk": _s(f"SHARD#{shard:02d}")}
            for shard in range(self._shards)
        ]
        items: list[dict[str, Any]] = []
        with _dynamodb_errors():
            for start in range(0, len(keys), 25):
                response = self._client.transact_get_items(
                    TransactItems=[
                        {"Get": {"TableName": self._balances, "Key": key}}
                        for key in keys[start : start + 25]
                    ]
                )
                items += [r["Item"] for r in response["Responses"] if r.get("Item")]
        return items

    def lookup_transfer(self, transfer_id: str) -> BookedTransfer | None:
        item = self._get(self._journal, "TRANSFER#" + transfer_id, _TRANSFER_SK)
        return None if item is None else BookedTransfer.model_validate_json(item["record"]["S"])

    def lookup_link(self, link: str) -> BookedTransfer | None:
        """The single or pending transfer booked with this ``link``; None if there is none.
        Two strongly consistent reads: the index item, then the transfer."""
        transfer_id = self._linked_id(link)
        return None if transfer_id is None else self.lookup_transfer(transfer_id)

    def _linked_id(self, link: str) -> str | None:
        item = self._get(self._journal, _LINK_PREFIX + link, _LINK_SK)
        return None if item is None else str(item["transferId"]["S"])

    def pending(self, pending_id: str) -> PendingState | None:
        item = self._get(self._balances, "PENDING#" + pending_id, _PENDING_SK)
        return None if item is None else _pending(item)

    def statement(
        self,
        account_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> StatementPage:
        """The account's entries in time order from ``since`` (inclusive) to ``until``
        (exclusive), ``limit`` per page; a house account's shards are merged."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        low, high = statement_bounds(since, until, cursor)
        if is_house_account(account_id):
            partitions = [f"ACCOUNT#{account_id}#{s:02d}" for s in range(self._shards)]
        else:
            partitions = ["ACCOUNT#" + account_id]
        streams = [self._entries_between(pk, low, high, limit + 1) for pk in partitions]
        merged = list(heapq.merge(*streams))[: limit + 1]
        page = merged[:limit]
        more = len(merged) > limit
        return StatementPage(
            entries=tuple(Entry.model_validate_json(record) for _, record in page),
            cursor=rules.encode_cursor(page[-1][0]) if more else None,
        )

    def _entries_between(self, pk: str, low: str, high: str, limit: int) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for item in self._query(
            self._journal,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={":pk": _s(pk), ":low": _s(low), ":high": _s(high)},
            ConsistentRead=True,
        ):
            key = item["sk"]["S"]
            if key == low:  # the cursor's own entry: bounds are exclusive
                continue
            found.append((key, item["record"]["S"]))
            if len(found) >= limit:
                break
        return found

    def trial_balance(self, currency: str) -> TrialBalance:
        """Sums the balance items (customer accounts and house shards), never the journal.
        A scan is not a snapshot: the figures are as of a moment between ``read_from`` and
        ``read_to``, and balance exactly only when no transfer was booked in between."""
        read_from = rules.utc(self._clock())
        posted = pending_debits = pending_credits = 0
        for item in self._scan(
            self._balances,
            FilterExpression="currency = :currency AND attribute_exists(posted)",
            ExpressionAttributeValues={":currency": _s(currency)},
            ConsistentRead=True,
        ):
            posted += _int(item, "posted")
            pending_debits += _int(item, "pendingDebits")
            pending_credits += _int(item, "pendingCredits")
        return TrialBalance(
            currency=currency,
            posted=posted,
            pending_debits=pending_debits,
            pending_credits=pending_credits,
            read_from=read_from,
            read_to=rules.utc(self._clock()),
        )

    def trial_balance_as_of(
        self, currency: str, as_of: datetime, *, in_flight_s: float = DEFAULT_IN_FLIGHT_S
    ) -> TrialBalance:
        """The trial balance exactly as of ``as_of``: every transfer booked at or before it,
        none after, while postings go on. Each balance is read between two reads of its
        entries booked after ``as_of`` (a consistent query of its journal partitions): when
        both find the same entries, no transfer touched the balance in between, and the
        balance less those entries is the balance as of ``as_of``; otherwise it is read
        again. ``as_of`` must be at least ``in_flight_s`` in the past (the longest a booking
        may take from its timestamp to its commit: the writers' function timeout), so that
        nothing booked before it can still land. Three reads per account with activity or
        not: a report for a cut-off, not something to run every minute."""
        at = rules.utc(as_of)
        now = rules.utc(self._clock())
        if (now - at).total_seconds() < in_flight_s:
            raise ValueError(
                f"as_of must be at least {in_flight_s:g} s in the past: a transfer booked "
                "before it may still be landing"
            )
        customers: set[str] = set()
        houses: set[str] = set()
        for item in self._scan(
            self._balances,
            FilterExpression="currency = :currency AND attribute_exists(posted)",
            ExpressionAttributeValues={":currency": _s(currency)},
            ProjectionExpression="pk",
        ):
            pk = item["pk"]["S"]
            if pk.startswith("HOUSE#"):
                houses.add(pk.removeprefix("HOUSE#"))
            else:
                customers.add(pk.removeprefix("ACCOUNT#"))
        totals = [self.balance_as_of(account_id, at) for account_id in sorted(customers | houses)]
        return TrialBalance(
            currency=currency,
            posted=sum(b.posted for b in totals),
            pending_debits=sum(b.pending_debits for b in totals),
            pending_credits=sum(b.pending_credits for b in totals),
            read_from=at,
            read_to=at,
        )

    def balance_as_of(self, account_id: str, at: datetime) -> Balance:
        """The account's balance as of ``at`` (its entries booked after it taken off), read so
        that no transfer lands unseen in between; ``trial_balance_as_of`` says when it is
        exact (``at`` far enough in the past)."""
        at = rules.utc(at)
        low = rules.entry_sort_key(at + timedelta(microseconds=1), "")
        partitions = (
            [f"ACCOUNT#{account_id}#{s:02d}" for s in range(self._shards)]
            if is_house_account(account_id)
            else ["ACCOUNT#" + account_id]
        )

        def booked_after() -> dict[str, str]:
            return {
                key: record
                for pk in partitions
                for key, record in self._entries_between(pk, low, "ENTRY$", 10**9)
            }

        for _ in range(self._max_retries + 1):
            before = booked_after()
            balance = self.balance(account_id)
            if booked_after().keys() == before.keys():
                later = [Entry.model_validate_json(record) for record in before.values()]
                return balance.model_copy(
                    update={
                        "posted": balance.posted - sum(e.posted for e in later),
                        "pending_debits": balance.pending_debits
                        - sum(e.pending_debits for e in later),
                        "pending_credits": balance.pending_credits
                        - sum(e.pending_credits for e in later),
                    }
                )
        raise TransientPostingError(
            f"account {account_id} kept changing while its balance as of {at} was read"
        )

    def tampered(self, account_id: str) -> list[str]:
        """Sort keys of the account's entries whose content no longer matches its hash."""
        partitions = (
            [f"ACCOUNT#{account_id}#{s:02d}" for s in range(self._shards)]
            if is_house_account(account_id)
            else ["ACCOUNT#" + account_id]
        )
        return [
            item["sk"]["S"]
            for pk in partitions
            for item in self._query(
                self._journal,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": _s(pk)},
                ConsistentRead=True,
            )
            if content_hash(item["record"]["S"]) != item["hash"]["S"]
        ]

    def _get(self, table: str, pk: str, sk: str) -> dict[str, Any] | None:
        with _dynamodb_errors():
            item: dict[str, Any] | None = self._client.get_item(
                TableName=table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
            ).get("Item")
        return item

    def _query(self, table: str, **request: Any) -> Iterator[dict[str, Any]]:
        return self._pages("query", table, request)

    def _scan(self, table: str, **request: Any) -> Iterator[dict[str, Any]]:
        return self._pages("scan", table, request)

    def _pages(self, operation: str, table: str, request: dict[str, Any]) -> Iterator[Any]:
        call = getattr(self._client, operation)
        start: dict[str, Any] | None = None
        while True:
            with _dynamodb_errors():
                page = call(
                    TableName=table, **request, **({"ExclusiveStartKey": start} if start else {})
                )
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


@contextmanager
def _dynamodb_errors() -> Iterator[None]:
    """DynamoDB's "not now" errors become ``TransientPostingError``; anything else (a bug, a
    missing table, denied access) propagates as is."""
    try:
        yield
    except ClientError as error:
        if _error_code(error) in _TRANSIENT_ERROR_CODES:
            raise TransientPostingError(f"DynamoDB: {_error_code(error)}") from error
        raise
    except BotoCoreError as error:
        raise TransientPostingError(f"DynamoDB unreachable: {error}") from error


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cancellation_codes(error: ClientError) -> set[str]:
    reasons = error.response.get("CancellationReasons") or []
    codes = {str(r.get("Code")) for r in reasons if r.get("Code") not in (None, "None")}
    if not codes:
        # Some clients leave the list out; the message still names the reasons.
        message = str(error.response.get("Error", {}).get("Message", ""))
        codes = {c for c in ("ConditionalCheckFailed", *_RETRY_REASONS) if c in message}
    return codes


def account_item(account: Account) -> dict[str, Any]:
    """The balances-table item of a newly opened account (a bulk load may write it as is)."""
    item: dict[str, Any] = {
        "pk": _s("ACCOUNT#" + account.account_id),
        "sk": _s(_ACCOUNT_SK),
        "accountId": _s(account.account_id),
        "currency": _s(account.currency),
        "kind": _s(account.kind.value),
        "status": _s(account.status.value),
        "creditLimit": _n(account.credit_limit),
    }
    if account.kind is AccountKind.CUSTOMER:
        for name in ("posted", "pendingDebits", "pendingCredits"):
            item[name] = _n(0)
        item["headroom"] = _n(account.credit_limit)
    return item


def _account(item: dict[str, Any]) -> Account:
    return Account(
        account_id=item["accountId"]["S"],
        currency=item["currency"]["S"],
        kind=AccountKind(item["kind"]["S"]),
        status=AccountStatus(item["status"]["S"]),
        credit_limit=_int(item, "creditLimit"),
    )


def _balance(account_id: str, currency: str, items: list[dict[str, Any]]) -> Balance:
    return Balance(
        account_id=account_id,
        currency=currency,
        posted=sum(_int(i, "posted") for i in items),
        pending_debits=sum(_int(i, "pendingDebits") for i in items),
        pending_credits=sum(_int(i, "pendingCredits") for i in items),
    )


def _pending(item: dict[str, Any]) -> PendingState:
    expires = item.get("expiresAt")
    return PendingState(
        pending_id=item["pendingId"]["S"],
        debit_account_id=item["debitAccountId"]["S"],
        credit_account_id=item["creditAccountId"]["S"],
        currency=item["currency"]["S"],
        amount=_int(item, "amount"),
        remaining=_int(item, "remaining"),
        status=PendingStatus(item["status"]["S"]),
        expires_at=None if expires is None else datetime.fromisoformat(expires["S"]),
    )


def table_definitions(journal_table: str, balances_table: str) -> list[dict[str, Any]]:
    """``CreateTable`` requests of both tables, for tests and the local runtime; the CDK
    stack declares the same keys and index."""
    keys = {
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    string = "S"
    return [
        {
            "TableName": journal_table,
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": string},
                {"AttributeName": "sk", "AttributeType": string},
            ],
            **keys,
        },
        {
            "TableName": balances_table,
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": string}
                for name in ("pk", "sk", "expiryBucket", "expiresAt")
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": EXPIRY_INDEX,
                    "KeySchema": [
                        {"AttributeName": "expiryBucket", "KeyType": "HASH"},
                        {"AttributeName": "expiresAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            **keys,
        },
    ]
