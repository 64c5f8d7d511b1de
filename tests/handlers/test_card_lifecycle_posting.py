"""The card and ATM lifecycle posted on ledger v2, from records as the pipeline sees them.

Each message goes record -> approved event -> posting request (``posting_request_for``) ->
``LedgerPostingSystem``, against the DynamoDB ledger on moto and the in-memory reference,
and the test reads what a cardholder would see: posted balance, what is held, available.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import TransactionApproved
from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.model import PendingStatus
from payment_posting_functions.domain.ledger_v2.posting_adapter import (
    BEYOND_TOLERANCE,
    NO_AUTHORIZATION,
    LedgerPostingSystem,
)
from payment_posting_functions.domain.ledger_v2.reference import InMemoryLedger
from payment_posting_functions.domain.posting import (
    OriginalNotYetPosted,
    PermanentPostingError,
    PostingFailureCode,
    PostingOutcome,
    PostingResult,
    PostingStatus,
)
from payment_posting_functions.domain.posting_instructions import posting_request_for
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

ACCOUNT = sample_accounts()[0]  # ACC-0001, EUR
LIMIT = 100_000
SENT = datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = SENT

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["dynamodb", "reference"])
def ledger(request: pytest.FixtureRequest, clock: Clock) -> Any:
    if request.param == "dynamodb":
        client = request.getfixturevalue("dynamodb")
        for definition in table_definitions("journal", "balances"):
            client.create_table(**definition)
        made: Any = DynamoDBLedger(client, "journal", "balances", house_shards=4, clock=clock)
    else:
        made = InMemoryLedger(clock=clock)
    made.open_account(ACCOUNT.account_id, "EUR", credit_limit=LIMIT)
    return made


@pytest.fixture
def poster(ledger: Any) -> LedgerPostingSystem:
    return LedgerPostingSystem(ledger)


def message(tid: str, mti: str, amount: int, *, rrn: str = "000000000001", auth: str = "AUTH01",
            code: str = "000000", **fields: Any) -> TransactionApproved:  # fmt: skip
    """An approved message of the card transaction (token, ``rrn``, ``auth``); ``tid`` is its
    transaction id."""
    item = valid_item(
        transactionId=tid, mti=mti, processingCode=code, rrn=rrn, authCode=auth,
        accountId=ACCOUNT.account_id, transactionAmount={"amount": amount, "currency": "EUR"},
        billingAmount={"amount": amount, "currency": "EUR"}, conversionRate="1.00000000",
        acquirerCountry="DE", **fields,
    )  # fmt: skip
    transaction = AuthorizedTransaction.model_validate(item)
    return TransactionApproved(
        transaction_id=tid, transaction=transaction, enrichment=enrich(transaction, ACCOUNT)
    )


def original(mti: str = "0100", rrn: str = "000000000001", auth: str = "AUTH01") -> dict[str, Any]:
    return {"mti": mti, "stan": "123456", "transmittedAt": SENT.isoformat(), "rrn": rrn,
            "authCode": auth}  # fmt: skip


def post(poster: LedgerPostingSystem, approved: TransactionApproved, *,
         overdue: bool = False) -> PostingResult:  # fmt: skip
    return poster.post(posting_request_for(approved, original_overdue=overdue))


def balance(ledger: Any) -> tuple[int, int, int]:
    """(posted, held, available) of the cardholder's account."""
    b = ledger.balance(ACCOUNT.account_id)
    return b.posted, b.pending_debits, b.available


def refused(poster: LedgerPostingSystem, approved: TransactionApproved,
            **options: Any) -> PostingFailureCode:  # fmt: skip
    with pytest.raises(PermanentPostingError) as raised:
        post(poster, approved, **options)
    return raised.value.code


# Authorization, then clearing (dual message)


def test_an_authorization_holds_and_its_clearing_posts_the_final_amount(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    held = post(poster, message("txn-auth-1", "0100", 5_000))
    assert (held.outcome, held.pending_id) == (PostingOutcome.HELD, "txn-auth-1")
    assert balance(ledger) == (0, 5_000, -5_000)

    # The restaurant added a 15 % tip: within the 20 % tolerance, posted in full.
    cleared = post(poster, message("txn-clr-1", "1240", 5_750))
    assert (cleared.outcome, cleared.pending_id, cleared.excess) == (
        PostingOutcome.CLEARED, "txn-auth-1", 750,
    )  # fmt: skip
    assert cleared.forced_reason is None
    assert balance(ledger) == (-5_750, 0, -5_750)
    state = ledger.pending("txn-auth-1")
    assert state.status is PendingStatus.POSTED


def test_a_clearing_below_the_authorization_releases_the_rest(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 8_000))  # fuel pump pre-authorization
    post(poster, message("txn-clr-1", "1240", 4_321))
    assert balance(ledger) == (-4_321, 0, -4_321)


def test_split_shipments_clear_one_authorization_in_parts(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 9_000))
    first = post(poster, message("txn-clr-1", "1240", 3_000, finalClearing=False))
    assert first.outcome is PostingOutcome.CLEARED
    assert balance(ledger) == (-3_000, 6_000, -9_000)
    post(poster, message("txn-clr-2", "1240", 2_500, stan="654321"))  # the last: releases 3,500
    assert balance(ledger) == (-5_500, 0, -5_500)


def test_a_clearing_beyond_the_tolerance_is_posted_forced_with_the_reason(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 1_000))
    cleared = post(poster, message("txn-clr-1", "1240", 1_500))
    assert (cleared.outcome, cleared.excess, cleared.forced_reason) == (
        PostingOutcome.CLEARED, 500, BEYOND_TOLERANCE,
    )  # fmt: skip
    assert balance(ledger) == (-1_500, 0, -1_500)


def test_a_clearing_waits_for_its_authorization_then_posts_forced_when_overdue(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    clearing = message("txn-clr-1", "1240", 2_000)
    with pytest.raises(OriginalNotYetPosted):
        post(poster, clearing)
    assert balance(ledger) == (0, 0, 0)
    # Still none after the retries the queue allows: the scheme has settled; posted forced,
    # even beyond the credit limit.
    big = message("txn-clr-2", "1240", LIMIT + 1, rrn="000000000002")
    result = post(poster, big, overdue=True)
    assert (result.outcome, result.forced_reason) == (PostingOutcome.POSTED, NO_AUTHORIZATION)
    assert balance(ledger) == (-(LIMIT + 1), 0, -(LIMIT + 1))


def test_an_authorization_after_its_clearing_was_posted_holds_nothing(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    # The authorization came late (or was decided in review after the scheme settled): the
    # clearing, posted without it, took its card transaction's link, so no hold follows.
    post(poster, message("txn-clr-1", "1240", 2_000), overdue=True)
    assert refused(poster, message("txn-auth-1", "0100", 2_000)) is PostingFailureCode.LINK_IN_USE
    assert balance(ledger) == (-2_000, 0, -2_000)
    # Another clearing of it waits for nothing: posted forced at once.
    again = post(poster, message("txn-clr-2", "1240", 500, stan="654321"))
    assert again.outcome is PostingOutcome.POSTED
    assert "settled" in (again.forced_reason or "")
    assert balance(ledger) == (-2_500, 0, -2_500)


def test_a_partial_clearing_without_its_hold_leaves_the_link_to_the_authorization(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-clr-1", "1240", 1_000, finalClearing=False), overdue=True)
    held = post(poster, message("txn-auth-1", "0100", 3_000))
    assert held.outcome is PostingOutcome.HELD


def test_a_clearing_after_its_hold_expired_is_posted_forced(
    poster: LedgerPostingSystem, ledger: Any, clock: Clock
) -> None:
    post(poster, message("txn-auth-1", "0100", 1_000))
    clock.now += timedelta(days=8)
    [expired] = ledger.expire_due(clock.now)
    assert expired.transfer_id == "expire:txn-auth-1"
    assert balance(ledger) == (0, 0, 0)
    result = post(poster, message("txn-clr-1", "1240", 1_000))
    assert result.outcome is PostingOutcome.POSTED
    assert result.forced_reason == "its authorization was expired"
    assert balance(ledger) == (-1_000, 0, -1_000)


def test_a_hotel_authorization_holds_for_31_days(poster: LedgerPostingSystem, ledger: Any) -> None:
    request = posting_request_for(message("txn-auth-1", "0100", 30_000, mcc="7011"))
    assert request.hold_seconds == 31 * 24 * 3600
    assert posting_request_for(message("txn-auth-2", "0100", 1)).hold_seconds == 7 * 24 * 3600


def test_an_advice_is_held_even_beyond_the_credit_limit(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    assert refused(poster, message("txn-auth-1", "0100", LIMIT + 1)) is (
        PostingFailureCode.EXCEEDS_CREDIT_LIMIT
    )
    held = post(poster, message("txn-auth-2", "0120", LIMIT + 1, rrn="000000000002"))
    assert held.outcome is PostingOutcome.HELD
    assert "0120" in (held.forced_reason or "")
    assert balance(ledger) == (0, LIMIT + 1, -(LIMIT + 1))


def test_a_completion_advice_clears_its_pre_authorization(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 10_000))
    completed = post(poster, message("txn-cmp-1", "0220", 7_345))
    assert (completed.outcome, completed.pending_id) == (PostingOutcome.CLEARED, "txn-auth-1")
    assert balance(ledger) == (-7_345, 0, -7_345)


def test_a_second_authorization_claiming_a_booked_link_is_refused(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 1_000))
    assert refused(poster, message("txn-auth-9", "0100", 1_000)) is PostingFailureCode.LINK_IN_USE
    assert balance(ledger) == (0, 1_000, -1_000)


# Financial (single message) and reversals


def test_an_atm_withdrawal_posts_at_once_and_its_reversal_corrects_it(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    posted = post(poster, message("txn-atm-1", "0200", 20_000, code="011000", mcc="6011"))
    assert (posted.outcome, posted.posting_id) == (PostingOutcome.POSTED, "txn-atm-1")
    assert balance(ledger) == (-20_000, 0, -20_000)
    # The machine dispensed 150.00 of 200.00: a partial reversal of 50.00.
    reversal = message("txn-rev-1", "0400", 5_000, code="011000", rrn="000000000009",
                       auth="AUTH09", original=original("0200"))  # fmt: skip
    undone = post(poster, reversal)
    assert (undone.outcome, undone.pending_id, undone.partial) == (
        PostingOutcome.CORRECTED, "txn-atm-1", True,
    )  # fmt: skip
    assert balance(ledger) == (-15_000, 0, -15_000)


def test_a_reversal_of_an_authorization_voids_its_hold(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 6_000))
    partial = message("txn-rev-1", "0400", 2_000, rrn="000000000009", original=original())
    result = post(poster, partial)
    assert (result.outcome, result.partial) == (PostingOutcome.VOIDED, True)
    assert balance(ledger) == (0, 4_000, -4_000)
    rest = message("txn-rev-2", "0420", 4_000, rrn="000000000010", original=original())
    result = post(poster, rest)
    assert result.outcome is PostingOutcome.VOIDED
    assert balance(ledger) == (0, 0, 0)
    assert ledger.pending("txn-auth-1").status is PendingStatus.VOIDED


def test_a_reversal_waits_for_its_original_then_fails_when_overdue(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    reversal = message("txn-rev-1", "0400", 1_000, rrn="000000000009", original=original())
    with pytest.raises(OriginalNotYetPosted):
        post(poster, reversal)
    assert refused(poster, reversal, overdue=True) is PostingFailureCode.ORIGINAL_NOT_FOUND
    assert balance(ledger) == (0, 0, 0)


def test_a_reversal_after_the_clearing_is_refused_a_refund_undoes_it(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    post(poster, message("txn-auth-1", "0100", 3_000))
    post(poster, message("txn-clr-1", "1240", 3_000))
    reversal = message("txn-rev-1", "0400", 3_000, rrn="000000000009", original=original())
    assert refused(poster, reversal) is PostingFailureCode.ORIGINAL_ALREADY_SETTLED
    refund = message("txn-ref-1", "0200", 3_000, code="200000", rrn="000000000011",
                     auth="AUTH11", original=original())  # fmt: skip
    credited = post(poster, refund)
    assert (credited.outcome, credited.original_id) == (PostingOutcome.POSTED, "txn-auth-1")
    assert balance(ledger) == (0, 0, 0)


def test_a_refund_without_a_known_original_is_credited_unlinked(
    poster: LedgerPostingSystem, ledger: Any
) -> None:
    refund = message("txn-ref-1", "1240", 999, code="200000", original=None)
    result = post(poster, refund, overdue=True)
    assert (result.outcome, result.original_id) == (PostingOutcome.POSTED, None)
    # A credit is never "forced": no balance rule refuses it.
    assert result.forced_reason == NO_AUTHORIZATION
    assert balance(ledger) == (999, 0, 999)


# Redelivery: every path answers its repeat from the ledger, moving nothing


@pytest.mark.parametrize(
    "steps",
    [
        [("txn-auth-1", "0100", 1_000, {})],
        [("txn-auth-1", "0100", 1_000, {}), ("txn-clr-1", "1240", 1_100, {})],
        [("txn-auth-1", "0100", 1_000, {}), ("txn-clr-1", "1240", 2_000, {})],
        [("txn-clr-1", "1240", 700, {"overdue": True})],
        [("txn-atm-1", "0200", 1_000, {}),
         ("txn-rev-1", "0400", 400, {"rrn": "000000000009", "original": original("0200")})],
        [("txn-auth-1", "0100", 1_000, {}),
         ("txn-rev-1", "0400", 1_000, {"rrn": "000000000009", "original": original()})],
    ],
    ids=["hold", "clearing-with-tip", "clearing-forced", "clearing-unmatched", "correction",
         "void"],
)  # fmt: skip
def test_a_redelivery_answers_with_the_same_outcome_and_moves_nothing(
    poster: LedgerPostingSystem, ledger: Any, steps: list[tuple[str, str, int, dict[str, Any]]]
) -> None:
    results = []
    for tid, mti, amount, options in steps:
        fields = {k: v for k, v in options.items() if k != "overdue"}
        overdue = bool(options.get("overdue"))
        approved = message(tid, mti, amount, **fields)
        results.append((approved, overdue, post(poster, approved, overdue=overdue)))
    before = balance(ledger)
    for approved, _, first in results:
        again = post(poster, approved, overdue=True)  # later, and overdue by then
        assert again.status is PostingStatus.ALREADY_POSTED
        assert again.model_copy(update={"status": first.status}) == first
    assert balance(ledger) == before
