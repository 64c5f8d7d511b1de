"""The pipeline's posting port over ledger v2: the card lifecycle as two-phase transfers.

By the message's class (``PostingRequest.message_class``):

- an **authorization** places a hold: a ``PENDING`` transfer with the card transaction's
  link, with the hold window as its timeout (the expiry sweeper releases it after);
- a **financial** message posts at once: a ``SINGLE`` transfer with its link;
- a **clearing** posts (part of) the hold its link names: ``POST_PENDING``, closing the
  hold when it is final; above the hold by at most the tip
  tolerance it books the excess, beyond it the whole is posted forced. A clearing whose hold
  is not in the ledger is waited for (the pipeline reorders messages), then, overdue, or if
  the hold was already released, posted as a forced ``SINGLE``: the scheme has settled;
- a **reversal** undoes its original (by the original's link): a ``VOID_PENDING`` of the
  hold (partial when it reverses less than remains), or, for a financial message, a
  ``SINGLE`` that corrects it, the other way. A cleared, voided or expired original is not
  reversed (a refund undoes a cleared purchase).

Every transfer's id is its message's transaction id. The link is derived from the data
elements every later message carries, and the ledger keeps it as an index item beside the
transfer (``lookup_link``), so finding the original is a keyed read, not a scan; a second
message claiming a link already booked is refused (``LINK_IN_USE``). Ids are the ledger's
last line of idempotency: a redelivery is answered from what was booked under the id
(``ALREADY_POSTED``); other content under it is refused as a conflict (``CONFLICT``).

A posting for an account the ledger does not hold goes to the suspense account of the
posting's currency (issue 11): enrichment names ``SUSPENSE-EUR`` for an account it could not
find, whatever the currency, and a directory account never opened in the ledger is refused
``ACCOUNT_NOT_FOUND`` by the ledger; both end in ``SUSPENSE-<currency>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from payment_posting_functions.domain.card_message import MessageClass
from payment_posting_functions.domain.ledger_v2.house import (
    SUSPENSE_PREFIX,
    is_house_account,
    suspense_account,
)
from payment_posting_functions.domain.ledger_v2.model import (
    BookedTransfer,
    PendingState,
    PendingStatus,
    RefusalCode,
    Transfer,
    TransferKind,
    TransferRefused,
    TransferResult,
    TransferStatus,
)
from payment_posting_functions.domain.posting import (
    Direction,
    OriginalNotYetPosted,
    PermanentPostingError,
    PostingFailureCode,
    PostingOutcome,
    PostingRequest,
    PostingResult,
    PostingStatus,
)

# What each refusal publishes; the rest is a plain REFUSED.
FAILURE_CODES = {
    RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS: PostingFailureCode.CONFLICT,
    RefusalCode.ACCOUNT_NOT_FOUND: PostingFailureCode.ACCOUNT_NOT_FOUND,
    RefusalCode.ACCOUNT_FROZEN: PostingFailureCode.ACCOUNT_FROZEN,
    RefusalCode.ACCOUNT_CLOSED: PostingFailureCode.ACCOUNT_CLOSED,
    RefusalCode.CURRENCY_MISMATCH: PostingFailureCode.CURRENCY_MISMATCH,
    RefusalCode.EXCEEDS_CREDIT_LIMIT: PostingFailureCode.EXCEEDS_CREDIT_LIMIT,
    RefusalCode.SAME_ACCOUNT: PostingFailureCode.SAME_ACCOUNT,
    RefusalCode.ZERO_AMOUNT: PostingFailureCode.ZERO_AMOUNT,
    RefusalCode.PENDING_ALREADY_RESOLVED: PostingFailureCode.ORIGINAL_ALREADY_SETTLED,
    RefusalCode.PENDING_EXPIRED: PostingFailureCode.ORIGINAL_ALREADY_SETTLED,
    RefusalCode.LINK_IN_USE: PostingFailureCode.LINK_IN_USE,
}

NO_AUTHORIZATION = "clearing without a matching authorization: the scheme has settled it"
BEYOND_TOLERANCE = "clearing above its authorization beyond the tolerance: the scheme settled it"
ALREADY_SETTLED = "clearing after its card transaction was settled: the scheme settled it again"

_ACCOUNT_FIELDS = frozenset({"debit_account_id", "credit_account_id"})
# A hold the ledger no longer has open: a clearing for it is posted forced, not waited for.
_RELEASED = (RefusalCode.PENDING_ALREADY_RESOLVED, RefusalCode.PENDING_EXPIRED)


class TransferLedger(Protocol):
    """What the adapter needs of a ledger: ``DynamoDBLedger`` or ``InMemoryLedger``."""

    def create_transfer(self, transfer: Transfer) -> TransferResult: ...

    def lookup_transfer(self, transfer_id: str) -> BookedTransfer | None: ...

    def lookup_link(self, link: str) -> BookedTransfer | None: ...

    def pending(self, pending_id: str) -> PendingState | None: ...


class LedgerPostingSystem:
    """``PostingSystem`` over a ledger v2 (``post`` raises ``PermanentPostingError`` with a
    ``PostingFailureCode`` for a refusal, ``TransientPostingError`` when DynamoDB stays busy
    or, ``OriginalNotYetPosted``, a clearing's or reversal's original is not in yet)."""

    def __init__(self, ledger: TransferLedger) -> None:
        self._ledger = ledger

    def post(self, request: PostingRequest) -> PostingResult:
        try:
            return self._post(request)
        except _Answered as answered:
            return answered.answer

    def _post(self, request: PostingRequest) -> PostingResult:
        if request.message_class is MessageClass.CLEARING:
            return self._clear(request)
        if request.message_class is MessageClass.REVERSAL:
            return self._reverse(request)
        kind = (
            TransferKind.PENDING
            if request.message_class is MessageClass.AUTHORIZATION
            else TransferKind.SINGLE
        )
        try:
            result = self._with_account(
                request, lambda account: transfer_for(request, account, kind, link=request.link_id)
            )
        except PermanentPostingError as failure:
            if failure.code is PostingFailureCode.LINK_IN_USE and self._completes_a_hold(request):
                # A pre-authorization's completion (0220 after 0100): it clears the hold.
                return self._clear(request)
            raise
        if kind is TransferKind.PENDING:
            return result.model_copy(
                update={"outcome": PostingOutcome.HELD, "pending_id": result.posting_id}
            )
        return result.model_copy(update={"original_id": self._original_of_refund(request)})

    def _completes_a_hold(self, request: PostingRequest) -> bool:
        if request.message_class is not MessageClass.FINANCIAL or request.link_id is None:
            return False
        linked = self._ledger.lookup_link(request.link_id)
        return linked is not None and linked.transfer.kind is TransferKind.PENDING

    # -- clearing ----------------------------------------------------------------------------

    def _clear(self, request: PostingRequest) -> PostingResult:
        booked = self._ledger.lookup_transfer(request.transaction_id)
        if booked is not None:
            return self._answer(request, booked)
        assert request.link_id is not None
        authorization = self._ledger.lookup_link(request.link_id)
        if authorization is not None and authorization.transfer.kind is not TransferKind.PENDING:
            # The link is a posting's (an earlier final clearing posted without its hold):
            # there is no hold to wait for.
            return self._forced_single(request, ALREADY_SETTLED)
        hold = None
        if authorization is not None:
            hold = self._ledger.pending(authorization.transfer.transfer_id)
        if hold is None:
            if not request.original_overdue:
                raise OriginalNotYetPosted(f"clearing {request.transaction_id}: no hold yet")
            return self._forced_single(request, NO_AUTHORIZATION)
        if hold.status is not PendingStatus.OPEN:
            return self._forced_single(request, f"its authorization was {hold.status.lower()}")
        post = Transfer(
            transfer_id=request.transaction_id,
            kind=TransferKind.POST_PENDING,
            pending_id=hold.pending_id,
            amount=request.amount,
            tolerance=hold.amount * request.tolerance_bps // 10_000,
            close=request.final,
        )
        try:
            return self._cleared(request, post, hold)
        except TransferRefused as refused:
            if refused.reason in _RELEASED:
                return self._forced_single(request, "its authorization was released")
            if refused.reason is not RefusalCode.EXCEEDS_PENDING_AMOUNT:
                raise self._failure_or_answer(request, refused) from refused
        # Beyond the tolerance: the scheme has settled it all the same.
        forced = post.model_copy(
            update={
                "tolerance": request.amount.amount - hold.remaining,
                "forced": True,
                "forced_reason": BEYOND_TOLERANCE,
            }
        )
        try:
            return self._cleared(request, forced, hold)
        except TransferRefused as refused:
            if refused.reason in _RELEASED:
                return self._forced_single(request, "its authorization was released")
            raise self._failure_or_answer(request, refused) from refused

    def _cleared(
        self, request: PostingRequest, post: Transfer, hold: PendingState
    ) -> PostingResult:
        result = self._ledger.create_transfer(post)
        booked = self._ledger.lookup_transfer(post.transfer_id)
        assert booked is not None
        return self._result(request, result, hold.debit_account_id, hold.credit_account_id,
                            outcome=PostingOutcome.CLEARED, pending_id=hold.pending_id,
                            forced_reason=post.forced_reason,
                            excess=request.amount.amount - booked.amount)  # fmt: skip

    def _forced_single(self, request: PostingRequest, reason: str) -> PostingResult:
        """A clearing posted without a hold. A final one claims its card transaction's link,
        so an authorization that comes after it (late, or decided in review after the
        scheme settled) is refused ``LINK_IN_USE`` instead of holding the money again for
        its whole window; when the link is taken already, it is posted without it."""
        # Only a debit can be refused by a balance rule: a credit needs no forcing.
        forced = reason if request.direction is Direction.DEBIT else None
        link = request.link_id if request.final else None
        try:
            try:
                result = self._with_account(request, lambda account: transfer_for(
                    request, account, forced_reason=forced, link=link))  # fmt: skip
            except PermanentPostingError as failure:
                if failure.code is not PostingFailureCode.LINK_IN_USE or link is None:
                    raise
                result = self._with_account(request, lambda account: transfer_for(
                    request, account, forced_reason=forced))  # fmt: skip
        except PermanentPostingError as failure:
            if failure.code is not PostingFailureCode.CONFLICT:
                raise
            booked = self._ledger.lookup_transfer(request.transaction_id)
            if booked is None:
                raise
            return self._answer(request, booked)
        return result.model_copy(update={"forced_reason": reason})

    # -- reversal ----------------------------------------------------------------------------

    def _reverse(self, request: PostingRequest) -> PostingResult:
        booked = self._ledger.lookup_transfer(request.transaction_id)
        if booked is not None:
            return self._answer(request, booked)
        assert request.link_id is not None
        original = self._ledger.lookup_link(request.link_id)
        if original is None:
            if not request.original_overdue:
                raise OriginalNotYetPosted(f"reversal {request.transaction_id}: no original yet")
            raise PermanentPostingError(
                f"reversal {request.transaction_id}: original {request.link_id} not found",
                PostingFailureCode.ORIGINAL_NOT_FOUND,
            )
        if original.transfer.kind is TransferKind.PENDING:
            undo = Transfer(
                transfer_id=request.transaction_id,
                kind=TransferKind.VOID_PENDING,
                pending_id=original.transfer.transfer_id,
                amount=request.amount,
            )
            outcome = PostingOutcome.VOIDED
        elif original.transfer.kind is TransferKind.SINGLE:
            undo = Transfer(
                transfer_id=request.transaction_id,
                debit_account_id=original.credit_account_id,
                credit_account_id=original.debit_account_id,
                amount=request.amount,
                corrects=original.transfer.transfer_id,
                forced=bool(request.forced_reason),
                forced_reason=request.forced_reason,
            )
            outcome = PostingOutcome.CORRECTED
        else:  # pragma: no cover - a link id names only holds and single postings
            raise PermanentPostingError(
                f"reversal {request.transaction_id}: {original.transfer.kind} is not reversible"
            )
        try:
            result = self._ledger.create_transfer(undo)
        except TransferRefused as refused:
            raise self._failure_or_answer(request, refused) from refused
        done = self._ledger.lookup_transfer(undo.transfer_id)
        assert done is not None
        return self._result(request, result, original.debit_account_id,
                            original.credit_account_id, outcome=outcome,
                            pending_id=original.transfer.transfer_id,
                            amount=None if done.amount == request.amount.amount
                            else done.amount,
                            partial=done.amount < original.amount)  # fmt: skip

    # -- answering a redelivery --------------------------------------------------------------

    def _answer(self, request: PostingRequest, booked: BookedTransfer) -> PostingResult:
        """What was booked under the request's id answers it, if it is what this request
        books (whichever path it took then); otherwise the id was used for other content."""
        transfer = booked.transfer
        same_money = transfer.amount == request.amount
        customer = _customer_side(booked)
        common = {
            "status": PostingStatus.ALREADY_POSTED,
            "posting_id": transfer.transfer_id,
            "account_id": None if customer == request.account_id else customer,
            "forced_reason": transfer.forced_reason,
        }
        original = self._ledger.lookup_link(request.link_id) if request.link_id else None
        original_id = original.transfer.transfer_id if original is not None else None
        resolves_link = transfer.pending_id is not None and transfer.pending_id == original_id
        part = None if booked.amount == request.amount.amount else booked.amount
        if same_money and resolves_link and transfer.kind is TransferKind.POST_PENDING:
            return PostingResult(**common, outcome=PostingOutcome.CLEARED,
                                 pending_id=transfer.pending_id,
                                 excess=request.amount.amount - booked.amount)  # fmt: skip
        if same_money and resolves_link and transfer.kind is TransferKind.VOID_PENDING:
            return PostingResult(**common, outcome=PostingOutcome.VOIDED,
                                 pending_id=transfer.pending_id, amount=part,
                                 partial=_partial(booked, original))  # fmt: skip
        corrects_link = transfer.corrects is not None and transfer.corrects == original_id
        if same_money and corrects_link and transfer.kind is TransferKind.SINGLE:
            return PostingResult(**common, outcome=PostingOutcome.CORRECTED,
                                 pending_id=transfer.corrects,
                                 partial=_partial(booked, original))  # fmt: skip
        forced_clearing = (
            request.message_class is MessageClass.CLEARING and transfer.corrects is None
        )
        if same_money and forced_clearing and transfer.kind is TransferKind.SINGLE:
            return PostingResult(**common, outcome=PostingOutcome.POSTED)
        raise PermanentPostingError(
            f"transfer {transfer.transfer_id} exists with other content",
            PostingFailureCode.CONFLICT,
            fields=("kind", "amount") if not same_money else ("kind",),
        )

    def _failure_or_answer(
        self, request: PostingRequest, refused: TransferRefused
    ) -> PermanentPostingError:
        """A refusal as the failure it publishes; a race lost to a redelivery of the same
        message is no failure, and is raised as its answer instead."""
        if refused.reason is RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS:
            booked = self._ledger.lookup_transfer(refused.transfer_id)
            if booked is not None:
                raise _Answered(self._answer(request, booked))
        return _failure(refused)

    # -- holds and single postings, with the suspense fallback -------------------------------

    def _with_account(
        self, request: PostingRequest, build: Callable[[str], Transfer]
    ) -> PostingResult:
        currency = request.amount.currency
        account_id = request.account_id
        if account_id.startswith(SUSPENSE_PREFIX):
            account_id = suspense_account(currency)
        try:
            return self._book(request, build(account_id), account_id)
        except TransferRefused as refused:
            if is_house_account(account_id) or not _unknown(refused, account_id):
                raise _failure(refused) from refused
        # The customer's account is not in the ledger: its money waits in suspense.
        suspense = suspense_account(currency)
        try:
            return self._book(request, build(suspense), suspense)
        except TransferRefused as refused:
            raise _failure(refused) from refused

    def _book(self, request: PostingRequest, transfer: Transfer, account_id: str) -> PostingResult:
        result = self._ledger.create_transfer(transfer)
        return PostingResult(
            status=_status(result),
            posting_id=result.transfer_id,
            account_id=None if account_id == request.account_id else account_id,
            forced_reason=transfer.forced_reason,
        )

    def _result(self, request: PostingRequest, result: TransferResult, debit: str, credit: str,
                **details: object) -> PostingResult:  # fmt: skip
        customer = debit if request.direction is Direction.DEBIT else credit
        return PostingResult.model_validate(
            {
                "status": _status(result),
                "posting_id": result.transfer_id,
                "account_id": None if customer == request.account_id else customer,
                **details,
            }
        )

    def _original_of_refund(self, request: PostingRequest) -> str | None:
        if request.original_link_id is None:
            return None
        found = self._ledger.lookup_link(request.original_link_id)
        return found.transfer.transfer_id if found is not None else None


class _Answered(PermanentPostingError):  # noqa: N818 (an answer, not an error)
    """Not a failure: carries the answer to a redelivery found while handling a refusal."""

    def __init__(self, answer: PostingResult) -> None:
        super().__init__("answered from the ledger")
        self.answer = answer


def transfer_for(
    request: PostingRequest,
    account_id: str,
    kind: TransferKind = TransferKind.SINGLE,
    *,
    link: str | None = None,
    forced_reason: str | None = None,
) -> Transfer:
    """The hold or single transfer of a posting, ``account_id`` on the customer's side, with
    ``link`` (an authorization's or a financial message's: its later messages find it by)."""
    debit = request.direction is Direction.DEBIT
    reason = forced_reason or request.forced_reason
    return Transfer(
        transfer_id=request.transaction_id,
        kind=kind,
        debit_account_id=account_id if debit else request.counter_account_id,
        credit_account_id=request.counter_account_id if debit else account_id,
        amount=request.amount,
        timeout_s=request.hold_seconds if kind is TransferKind.PENDING else None,
        forced=reason is not None,
        forced_reason=reason,
        link=link,
    )


def _partial(booked: BookedTransfer, original: BookedTransfer | None) -> bool:
    return original is not None and booked.amount < original.amount


def _status(result: TransferResult) -> PostingStatus:
    if result.status is TransferStatus.ALREADY_EXISTS:
        return PostingStatus.ALREADY_POSTED
    return PostingStatus.POSTED


def _customer_side(booked: BookedTransfer) -> str:
    if is_house_account(booked.debit_account_id) and not booked.debit_account_id.startswith(
        SUSPENSE_PREFIX
    ):
        return booked.credit_account_id
    return booked.debit_account_id


def _unknown(refused: TransferRefused, account_id: str) -> bool:
    """The ledger does not hold the customer's account: not found, or (a redelivery of a
    posting that went to suspense) found booked with suspense on the customer's side."""
    if refused.reason is RefusalCode.ACCOUNT_NOT_FOUND:
        return refused.account_id == account_id
    moved = set(refused.fields)
    return refused.reason is RefusalCode.EXISTS_WITH_DIFFERENT_FIELDS and moved <= _ACCOUNT_FIELDS


def _failure(refused: TransferRefused) -> PermanentPostingError:
    code = FAILURE_CODES.get(refused.reason, PostingFailureCode.REFUSED)
    return PermanentPostingError(str(refused), code, fields=refused.fields)
