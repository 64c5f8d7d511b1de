"""``InMemoryLedger``: the ledger's semantics without I/O, the oracle the DynamoDB ledger is
checked against (see ``model`` for the rules). Not thread-safe; one caller at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from payment_posting_functions.domain.ledger_v2 import rules
from payment_posting_functions.domain.ledger_v2.house import house_currency, is_house_account
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
    excess_id,
    expire_id,
)
from payment_posting_functions.domain.money import Money

_RESOLVED_AS = {
    TransferKind.VOID_PENDING: PendingStatus.VOIDED,
    TransferKind.EXPIRE_PENDING: PendingStatus.EXPIRED,
}


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryLedger:
    def __init__(self, *, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._accounts: dict[str, Account] = {}
        self._balances: dict[str, Balance] = {}
        self._transfers: dict[str, BookedTransfer] = {}
        self._links: dict[str, str] = {}  # link -> transfer id
        self._pendings: dict[str, PendingState] = {}
        self._entries: dict[str, dict[str, Entry]] = defaultdict(dict)

    # -- accounts -------------------------------------------------------------------------

    def open_account(self, account_id: str, currency: str, *, credit_limit: int = 0) -> Account:
        """Open an account, or return it if it is open with these settings already."""
        wanted = new_account(account_id, currency, credit_limit)
        existing = self._accounts.get(account_id)
        if existing is not None:
            return same_account(existing, wanted)
        self._accounts[account_id] = wanted
        self._balances[account_id] = Balance(account_id=account_id, currency=currency)
        return wanted

    def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def freeze(self, account_id: str) -> Account:
        return self._set_status(account_id, AccountStatus.FROZEN)

    def unfreeze(self, account_id: str) -> Account:
        return self._set_status(account_id, AccountStatus.OPEN)

    def close(self, account_id: str) -> Account:
        """Close an empty account (nothing posted, nothing pending); it refuses all transfers."""
        balance = self.balance(account_id)
        if balance.posted or balance.pending_debits or balance.pending_credits:
            raise AccountError(f"account {account_id} is not empty and cannot close")
        return self._set_status(account_id, AccountStatus.CLOSED)

    def _set_status(self, account_id: str, status: AccountStatus) -> Account:
        account = self._accounts.get(account_id)
        check_status_change(account_id, account)
        assert account is not None
        changed = account.model_copy(update={"status": status})
        self._accounts[account_id] = changed
        return changed

    # -- transfers ------------------------------------------------------------------------

    def create_transfer(self, transfer: Transfer) -> TransferResult:
        """Book a transfer once; a redelivery is ALREADY_EXISTS. Raises TransferRefused."""
        rules.check_submitted(transfer)
        now = rules.utc(self._clock())
        return self._create(transfer, now)

    def expire_due(
        self, now: datetime | None = None, *, limit: int | None = None
    ) -> list[TransferResult]:
        """The sweeper: expire every open pending whose timeout has passed at ``now``, the
        earliest first; with ``limit``, at most that many (the rest wait for the next sweep)."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        at = rules.utc(now if now is not None else self._clock())
        due = sorted(
            (p for p in self._pendings.values() if is_due(p, at)),
            key=lambda p: (p.expires_at, p.pending_id),
        )
        return [self._create(expiry(p), at) for p in due[:limit]]

    def _create(self, transfer: Transfer, now: datetime) -> TransferResult:
        rules.static_refusal(transfer)
        booked = self._transfers.get(transfer.transfer_id)
        if booked is not None:
            return repeat_result(booked, transfer)
        if transfer.kind in (TransferKind.SINGLE, TransferKind.PENDING):
            if transfer.link is not None and transfer.link in self._links:
                raise TransferRefused(RefusalCode.LINK_IN_USE, transfer.transfer_id)
            result = self._book_move(transfer, now)
            if transfer.link is not None:
                self._links[transfer.link] = transfer.transfer_id
            return result
        return self._book_resolution(transfer, now)

    def _book_move(self, transfer: Transfer, now: datetime) -> TransferResult:
        assert transfer.debit_account_id is not None
        assert transfer.credit_account_id is not None
        for account_id in (transfer.debit_account_id, transfer.credit_account_id):
            if opens_on_first_use(account_id, transfer) and account_id not in self._accounts:
                self.open_account(account_id, transfer.amount.currency)
        debit = self._accounts.get(transfer.debit_account_id)
        credit = self._accounts.get(transfer.credit_account_id)
        rules.check_accounts(transfer, debit, credit)
        assert debit is not None
        assert credit is not None
        if transfer.corrects is not None:
            rules.check_correction(transfer, self._transfers.get(transfer.corrects))
        self._check_limit(transfer, debit, transfer.amount.amount)
        self._book(transfer, debit.account_id, credit.account_id, now, None)
        return TransferResult(status=TransferStatus.CREATED, transfer_id=transfer.transfer_id)

    def _book_resolution(self, transfer: Transfer, now: datetime) -> TransferResult:
        assert transfer.pending_id is not None
        pending = self._pendings.get(transfer.pending_id)
        if pending is None:
            raise TransferRefused(RefusalCode.PENDING_NOT_FOUND, transfer.transfer_id)
        resolution = rules.resolve(transfer, pending, now)
        excess = excess_transfer(transfer, pending, resolution.excess)
        if excess is not None:
            debit = self._accounts[pending.debit_account_id]
            if debit.status is not AccountStatus.OPEN:
                raise TransferRefused(
                    RefusalCode.ACCOUNT_FROZEN, transfer.transfer_id, account_id=debit.account_id
                )
            self._check_limit(excess, debit, resolution.excess, refused_id=transfer.transfer_id)
        linked = (excess.transfer_id,) if excess is not None else ()
        self._book(
            transfer,
            pending.debit_account_id,
            pending.credit_account_id,
            now,
            resolution,
            linked=linked,
        )
        remaining = pending.remaining - resolution.consumed
        status = _RESOLVED_AS.get(transfer.kind, PendingStatus.POSTED)
        self._pendings[pending.pending_id] = pending.model_copy(
            update={
                "remaining": remaining,
                "status": status if remaining == 0 else PendingStatus.OPEN,
            }
        )
        if excess is not None:
            self._book(excess, pending.debit_account_id, pending.credit_account_id, now, None)
        return TransferResult(
            status=TransferStatus.CREATED, transfer_id=transfer.transfer_id, linked=linked
        )

    def _check_limit(
        self, transfer: Transfer, debit: Account, amount: int, *, refused_id: str | None = None
    ) -> None:
        if rules.guarded(transfer, debit):
            balance = self._balances[debit.account_id]
            if balance.available - amount < -debit.credit_limit:
                raise TransferRefused(
                    RefusalCode.EXCEEDS_CREDIT_LIMIT,
                    refused_id or transfer.transfer_id,
                    account_id=debit.account_id,
                )

    def _book(
        self,
        transfer: Transfer,
        debit_id: str,
        credit_id: str,
        now: datetime,
        resolution: rules.Resolution | None,
        *,
        linked: tuple[str, ...] = (),
    ) -> None:
        entries = rules.booking_entries(transfer, debit_id, credit_id, now, resolution)
        for entry in entries:
            self._entries[entry.account_id][rules.entry_sort_key(now, entry.transfer_id)] = entry
            current = self._balances[entry.account_id]
            self._balances[entry.account_id] = current.model_copy(
                update={
                    "posted": current.posted + entry.posted,
                    "pending_debits": current.pending_debits + entry.pending_debits,
                    "pending_credits": current.pending_credits + entry.pending_credits,
                }
            )
        if transfer.kind is TransferKind.PENDING:
            self._pendings[transfer.transfer_id] = PendingState(
                pending_id=transfer.transfer_id,
                debit_account_id=debit_id,
                credit_account_id=credit_id,
                currency=transfer.amount.currency,
                amount=transfer.amount.amount,
                remaining=transfer.amount.amount,
                expires_at=expiry_time(transfer, now),
            )
        moved = (
            transfer.amount.amount
            if resolution is None
            else (resolution.posted or resolution.released)
        )
        self._transfers[transfer.transfer_id] = BookedTransfer(
            transfer=transfer,
            timestamp=now,
            debit_account_id=debit_id,
            credit_account_id=credit_id,
            amount=moved,
            linked=linked,
        )

    # -- reads ----------------------------------------------------------------------------

    def balance(self, account_id: str) -> Balance:
        balance = self._balances.get(account_id)
        if balance is None:
            raise AccountError(f"account {account_id} does not exist")
        return balance

    def lookup_transfer(self, transfer_id: str) -> BookedTransfer | None:
        return self._transfers.get(transfer_id)

    def lookup_link(self, link: str) -> BookedTransfer | None:
        """The single or pending transfer booked with this ``link``; None if there is none."""
        transfer_id = self._links.get(link)
        return None if transfer_id is None else self._transfers.get(transfer_id)

    def pending(self, pending_id: str) -> PendingState | None:
        return self._pendings.get(pending_id)

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
        (exclusive), ``limit`` per page; pass the page's cursor for the next one."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        low, high = statement_bounds(since, until, cursor)
        by_key = self._entries.get(account_id, {})
        keys = [k for k in sorted(by_key) if low < k < high]
        page = keys[:limit]
        more = len(keys) > limit
        return StatementPage(
            entries=tuple(by_key[k] for k in page),
            cursor=rules.encode_cursor(page[-1]) if more else None,
        )

    def trial_balance(self, currency: str) -> TrialBalance:
        # Two clock readings, as the DynamoDB ledger's read window has two ends.
        read_from = rules.utc(self._clock())
        balances = [b for b in self._balances.values() if b.currency == currency]
        return TrialBalance(
            currency=currency,
            posted=sum(b.posted for b in balances),
            pending_debits=sum(b.pending_debits for b in balances),
            pending_credits=sum(b.pending_credits for b in balances),
            read_from=read_from,
            read_to=rules.utc(self._clock()),
        )

    def account_ids(self) -> list[str]:
        return sorted(self._accounts)


# -- helpers both ledgers use ----------------------------------------------------------------


def new_account(account_id: str, currency: str, credit_limit: int) -> Account:
    house = is_house_account(account_id)
    if house and (house_currency(account_id) != currency or credit_limit):
        raise AccountError(
            f"house account {account_id} is in the currency it names and has no credit limit"
        )
    return Account(
        account_id=account_id,
        currency=currency,
        kind=AccountKind.HOUSE if house else AccountKind.CUSTOMER,
        credit_limit=credit_limit,
    )


def opens_on_first_use(account_id: str, transfer: Transfer) -> bool:
    """A house account opens when a transfer in the currency it names first uses it: its id
    and settings are derived (no credit limit, never frozen), so nothing has to open the
    clearing and suspense accounts of each currency before a deployed stack posts. A house
    account of another currency is not opened by it (the transfer is refused as not found)."""
    return is_house_account(account_id) and house_currency(account_id) == transfer.amount.currency


def same_account(existing: Account, wanted: Account) -> Account:
    if (existing.currency, existing.credit_limit) != (wanted.currency, wanted.credit_limit):
        raise AccountError(f"account {wanted.account_id} is open with other settings")
    return existing


def check_status_change(account_id: str, account: Account | None) -> None:
    if account is None:
        raise AccountError(f"account {account_id} does not exist")
    if account.kind is AccountKind.HOUSE:
        # House items are never read on the posting path, so their status could not be
        # enforced there; they stay open.
        raise AccountError(f"house account {account_id} cannot be frozen or closed")
    if account.status is AccountStatus.CLOSED:
        raise AccountError(f"account {account_id} is closed for good")


def repeat_result(booked: BookedTransfer, transfer: Transfer) -> TransferResult:
    fields = booked.transfer.differing_fields(transfer)
    if fields:
        raise TransferRefused(
            RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS, transfer.transfer_id, fields=fields
        )
    return TransferResult(
        status=TransferStatus.ALREADY_EXISTS,
        transfer_id=transfer.transfer_id,
        linked=booked.linked,
    )


def excess_transfer(transfer: Transfer, pending: PendingState, amount: int) -> Transfer | None:
    if not amount:
        return None
    return Transfer(
        transfer_id=excess_id(transfer.transfer_id),
        debit_account_id=pending.debit_account_id,
        credit_account_id=pending.credit_account_id,
        amount=Money(amount=amount, currency=pending.currency),
        forced=transfer.forced,
        forced_reason=transfer.forced_reason,
        excess_of=transfer.transfer_id,
    )


def expiry(pending: PendingState) -> Transfer:
    return Transfer(
        transfer_id=expire_id(pending.pending_id),
        kind=TransferKind.EXPIRE_PENDING,
        pending_id=pending.pending_id,
        amount=Money(amount=0, currency=pending.currency),
    )


def expiry_time(transfer: Transfer, now: datetime) -> datetime | None:
    return None if transfer.timeout_s is None else now + timedelta(seconds=transfer.timeout_s)


def is_due(pending: PendingState, now: datetime) -> bool:
    return (
        pending.status is PendingStatus.OPEN
        and pending.expires_at is not None
        and pending.expires_at <= now
    )


def statement_bounds(
    since: datetime | None, until: datetime | None, cursor: str | None
) -> tuple[str, str]:
    """Exclusive sort-key bounds of a statement read."""
    low = rules.entry_sort_key(since, "") if since is not None else "ENTRY#"
    if cursor is not None:
        low = max(low, rules.decode_cursor(cursor))
    high = rules.entry_sort_key(until, "") if until is not None else "ENTRY$"
    return low, high
