"""The posting port over ledger v2 on moto: one single transfer per posting, refusals as
failure codes with fixed texts, unknown accounts into the suspense account of the currency."""

from __future__ import annotations

from typing import Any

import pytest

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.house import clearing_account, suspense_account
from payment_posting_functions.domain.ledger_v2.posting_adapter import LedgerPostingSystem
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import (
    FAILURE_REASONS,
    Direction,
    PermanentPostingError,
    PostingFailureCode,
    PostingRequest,
    PostingStatus,
)

CUSTOMER = "ACC-1"
CURRENCIES = ("EUR", "USD")


@pytest.fixture
def ledger(dynamodb: Any) -> DynamoDBLedger:
    for definition in table_definitions("journal", "balances"):
        dynamodb.create_table(**definition)
    ledger = DynamoDBLedger(dynamodb, "journal", "balances", house_shards=4)
    for currency in CURRENCIES:
        ledger.open_account(clearing_account(currency), currency)
        ledger.open_account(suspense_account(currency), currency)
    ledger.open_account(CUSTOMER, "EUR", credit_limit=1_000)
    return ledger


@pytest.fixture
def poster(ledger: DynamoDBLedger) -> LedgerPostingSystem:
    return LedgerPostingSystem(ledger)


def request(
    tid: str = "tx-1",
    *,
    account: str = CUSTOMER,
    amount: int = 250,
    currency: str = "EUR",
    direction: Direction = Direction.DEBIT,
) -> PostingRequest:
    return PostingRequest(
        transaction_id=tid,
        account_id=account,
        counter_account_id=clearing_account(currency),
        amount=Money(amount=amount, currency=currency),
        direction=direction,
    )


def refusal(poster: LedgerPostingSystem, posting: PostingRequest) -> PermanentPostingError:
    with pytest.raises(PermanentPostingError) as raised:
        poster.post(posting)
    return raised.value


def test_a_debit_is_one_transfer_keyed_by_the_transaction_id(
    poster: LedgerPostingSystem, ledger: DynamoDBLedger
) -> None:
    result = poster.post(request())

    assert (result.status, result.posting_id, result.account_id) == (
        PostingStatus.POSTED,
        "tx-1",
        None,
    )
    booked = ledger.lookup_transfer("tx-1")
    assert booked is not None
    assert (booked.debit_account_id, booked.credit_account_id) == (CUSTOMER, "CLEARING-EUR")
    assert ledger.balance(CUSTOMER).posted == -250
    assert ledger.balance("CLEARING-EUR").posted == 250
    assert ledger.trial_balance("EUR").balanced


def test_a_refund_credits_the_customer(poster: LedgerPostingSystem, ledger: DynamoDBLedger) -> None:
    poster.post(request(direction=Direction.CREDIT))

    assert ledger.balance(CUSTOMER).posted == 250
    assert ledger.balance("CLEARING-EUR").posted == -250


def test_a_repeat_is_already_posted_and_moves_nothing(
    poster: LedgerPostingSystem, ledger: DynamoDBLedger
) -> None:
    poster.post(request())

    again = poster.post(request())

    assert (again.status, again.posting_id) == (PostingStatus.ALREADY_POSTED, "tx-1")
    assert ledger.balance(CUSTOMER).posted == -250


@pytest.mark.parametrize(
    ("changed", "fields"),
    [
        ({"amount": 251}, ("amount",)),
        ({"direction": Direction.CREDIT}, ("credit_account_id", "debit_account_id")),
    ],
)
def test_a_repeat_with_other_content_is_a_conflict_naming_fields_not_values(
    poster: LedgerPostingSystem,
    ledger: DynamoDBLedger,
    changed: dict[str, Any],
    fields: tuple[str, ...],
) -> None:
    poster.post(request())

    refused = refusal(poster, request(**changed))

    assert refused.code is PostingFailureCode.CONFLICT
    assert refused.fields == fields
    assert "251" not in FAILURE_REASONS[refused.code]
    assert ledger.balance(CUSTOMER).posted == -250  # nothing booked


def test_an_account_the_ledger_does_not_hold_posts_to_suspense_of_the_currency(
    poster: LedgerPostingSystem, ledger: DynamoDBLedger
) -> None:
    result = poster.post(request(account="ACC-NEVER-OPENED"))
    again = poster.post(request(account="ACC-NEVER-OPENED"))

    assert (result.status, result.account_id) == (PostingStatus.POSTED, "SUSPENSE-EUR")
    assert (again.status, again.account_id) == (PostingStatus.ALREADY_POSTED, "SUSPENSE-EUR")
    assert ledger.balance("SUSPENSE-EUR").posted == -250
    assert ledger.account("ACC-NEVER-OPENED") is None  # no account made on first touch


def test_suspense_named_by_enrichment_is_the_suspense_of_the_posting_currency(
    poster: LedgerPostingSystem, ledger: DynamoDBLedger
) -> None:
    result = poster.post(request(account="SUSPENSE-EUR", currency="USD"))

    assert result.account_id == "SUSPENSE-USD"
    assert ledger.balance("SUSPENSE-USD").posted == -250
    assert ledger.trial_balance("USD").balanced
    assert ledger.balance("SUSPENSE-EUR").posted == 0


@pytest.mark.parametrize(
    ("setup", "posting", "code"),
    [
        (None, request(amount=1_251), PostingFailureCode.EXCEEDS_CREDIT_LIMIT),
        ("freeze", request(), PostingFailureCode.ACCOUNT_FROZEN),
        ("close", request(), PostingFailureCode.ACCOUNT_CLOSED),
        (None, request(currency="USD"), PostingFailureCode.CURRENCY_MISMATCH),
        (None, request(amount=0), PostingFailureCode.ZERO_AMOUNT),
        (None, request(account="CLEARING-EUR"), PostingFailureCode.SAME_ACCOUNT),
    ],
)
def test_each_refusal_is_its_own_code_with_a_fixed_text(
    poster: LedgerPostingSystem,
    ledger: DynamoDBLedger,
    setup: str | None,
    posting: PostingRequest,
    code: PostingFailureCode,
) -> None:
    if setup is not None:
        getattr(ledger, setup)(CUSTOMER)

    refused = refusal(poster, posting)

    assert refused.code is code
    assert CUSTOMER not in FAILURE_REASONS[code]
    assert ledger.lookup_transfer(posting.transaction_id) is None


def test_a_deployed_stack_posts_with_no_house_account_opened(dynamodb: Any) -> None:
    # Nothing opened CLEARING-EUR: the first posting in EUR opens it, in EUR, and books.
    for definition in table_definitions("journal", "balances"):
        dynamodb.create_table(**definition)
    ledger = DynamoDBLedger(dynamodb, "journal", "balances", house_shards=4)
    ledger.open_account(CUSTOMER, "EUR")

    result = LedgerPostingSystem(ledger).post(request(amount=1, direction=Direction.CREDIT))

    assert result.status is PostingStatus.POSTED
    clearing = ledger.account("CLEARING-EUR")
    assert clearing is not None
    assert clearing.currency == "EUR"
    assert ledger.trial_balance("EUR").posted == 0


def test_every_failure_code_has_a_fixed_reason() -> None:
    assert set(FAILURE_REASONS) == set(PostingFailureCode)
