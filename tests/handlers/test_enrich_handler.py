"""The enrichment handler on moto: a real accounts table, a real bus, and a queue tapping it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from payment_posting_functions.domain.account_table import AccountTable
from payment_posting_functions.domain.accounts import SUSPENSE_ACCOUNT_ID, Account, sample_accounts
from payment_posting_functions.domain.events import (
    Screening,
    TransactionAuthorized,
    TransactionEnriched,
)
from payment_posting_functions.domain.publisher import PublishError
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_posting_functions.handlers import enrich
from tests.factories import TEST_PAN, valid_item
from tests.handlers.conftest import handler_output

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ACCOUNTS_TABLE = "accounts"
BUS = "payments"
TOKEN = valid_item()["panToken"]
ACCOUNTS: dict[str, Account] = {account.account_id: account for account in sample_accounts()}


def delivered(detail: dict[str, Any]) -> dict[str, Any]:
    """A TransactionAuthorized detail wrapped as EventBridge hands it to a Lambda target."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "TransactionAuthorized",
        "source": "payments.ingest",
        "account": "123456789012",
        "time": "2026-11-24T10:15:31Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def authorized(**overrides: Any) -> dict[str, Any]:
    """A valid first sighting of ``valid_item(**overrides)``, as the screening step emits it."""
    transaction = AuthorizedTransaction.model_validate(valid_item(**overrides))
    return TransactionAuthorized(
        transaction_id=transaction.transaction_id,
        screening=Screening(valid=True, fingerprint="f" * 64),
        transaction=transaction,
    ).to_detail()


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every event the tap queue holds, oldest first."""
    sqs = boto3.client("sqs")
    events: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def accounts_table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    boto3.client("dynamodb").create_table(
        TableName=ACCOUNTS_TABLE,
        KeySchema=[{"AttributeName": "accountId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "accountId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    seeded = AccountTable(boto3.resource("dynamodb").Table(ACCOUNTS_TABLE)).put_all(
        ACCOUNTS.values()
    )
    assert seeded == len(ACCOUNTS)
    monkeypatch.setenv("ACCOUNTS_TABLE_NAME", ACCOUNTS_TABLE)
    return ACCOUNTS_TABLE


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """The handler caches its clients per process, as Lambda does; each test gets new ones."""
    enrich.accounts.cache_clear()
    enrich.publisher.cache_clear()
    yield
    enrich.accounts.cache_clear()
    enrich.publisher.cache_clear()


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    with handler_output(enrich.logger, capsys) as read:
        yield read


def enriched_from(events: list[dict[str, Any]]) -> TransactionEnriched:
    assert [e["detail-type"] for e in events] == ["TransactionEnriched"]
    assert events[0]["source"] == "payments.enrichment"
    return TransactionEnriched.model_validate(events[0]["detail"])


@pytest.mark.usefixtures("accounts_table")
@pytest.mark.parametrize("account_id", ["ACC-0001", "ACC-0010"])
def test_a_known_account_is_enriched_with_its_context(
    tap: str, lambda_context: Any, logs: Callable[[], str], account_id: str
) -> None:
    detail = authorized(accountId=account_id)

    assert enrich.handler(delivered(detail), lambda_context) is None

    event = enriched_from(drain(tap))
    account = ACCOUNTS[account_id]
    assert event.transaction_id == detail["transactionId"]
    assert event.to_detail()["transaction"] == detail["transaction"]
    assert event.enrichment.account_found is True
    assert event.enrichment.posting_account_id == account_id
    assert event.enrichment.iban == account.iban
    assert event.enrichment.holds is account.holds
    assert event.enrichment.account_type == account.account_type
    assert event.enrichment.tax_category == account.tax_category
    assert event.schema_version == "1.0"
    output = logs()
    assert "enriched a transaction" in output  # the capture works
    assert TOKEN not in output


@pytest.mark.usefixtures("accounts_table")
def test_an_unknown_account_is_enriched_toward_suspense_not_lost(
    tap: str, lambda_context: Any
) -> None:
    detail = authorized(accountId="ACC-9999")

    enrich.handler(delivered(detail), lambda_context)

    event = enriched_from(drain(tap))
    assert event.transaction_id == detail["transactionId"]
    assert event.enrichment.account_found is False
    assert event.enrichment.posting_account_id == SUSPENSE_ACCOUNT_ID == "SUSPENSE-EUR"
    assert event.enrichment.iban is None
    assert event.enrichment.holds is False


@pytest.mark.usefixtures("accounts_table")
@pytest.mark.parametrize(
    ("paid", "billed", "rate", "expected", "deviation_bps"),
    [
        # valid_item(): 12.50 USD at 0.9215 is 11.51875 EUR, rounded half-even to 11.52.
        ({"amount": 1250, "currency": "USD"}, {"amount": 1152, "currency": "EUR"}, "0.92150000",
         1152, 0),
        ({"amount": 1250, "currency": "USD"}, {"amount": 1153, "currency": "EUR"}, "0.92150000",
         1152, 8),
        # JPY has no minor units: 10,000 JPY at 0.0062 is 62.00 EUR.
        ({"amount": 10_000, "currency": "JPY"}, {"amount": 6200, "currency": "EUR"}, "0.0062",
         6200, 0),
    ],
)  # fmt: skip
def test_a_foreign_transaction_carries_its_fx_check(
    tap: str,
    lambda_context: Any,
    paid: dict[str, Any],
    billed: dict[str, Any],
    rate: str,
    expected: int,
    deviation_bps: int,
) -> None:
    detail = authorized(transactionAmount=paid, billingAmount=billed, conversionRate=rate)

    enrich.handler(delivered(detail), lambda_context)

    fx = enriched_from(drain(tap)).enrichment.fx
    assert fx.expected_billing_amount == expected
    assert fx.deviation_bps == deviation_bps


def test_a_missing_accounts_table_raises_so_lambda_retries(
    accounts_table: str, tap: str, lambda_context: Any, logs: Callable[[], str]
) -> None:
    boto3.client("dynamodb").delete_table(TableName=accounts_table)

    with pytest.raises(ClientError) as raised:
        enrich.handler(delivered(authorized()), lambda_context)

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert drain(tap) == []
    assert TOKEN not in logs()


@pytest.mark.usefixtures("accounts_table")
def test_a_refusing_bus_raises_so_lambda_retries(tap: str, lambda_context: Any) -> None:
    boto3.client("events").delete_event_bus(Name=BUS)

    # moto refuses the call outright; AWS may instead fail the entry (PublishError).
    with pytest.raises((ClientError, PublishError)):
        enrich.handler(delivered(authorized()), lambda_context)


@pytest.mark.usefixtures("accounts_table")
@pytest.mark.parametrize(
    "screening",
    [
        Screening(valid=True, duplicate=True, duplicate_of="first-0000001", fingerprint="f" * 64),
        Screening(valid=False, invalid_reason="billingAmount: Field required"),
    ],
    ids=["duplicate", "invalid"],
)
def test_a_misrouted_event_is_left_alone(
    tap: str, lambda_context: Any, logs: Callable[[], str], screening: Screening
) -> None:
    transaction = AuthorizedTransaction.model_validate(valid_item()) if screening.valid else None
    detail = TransactionAuthorized(
        transaction_id=valid_item()["transactionId"], screening=screening, transaction=transaction
    ).to_detail()

    assert enrich.handler(delivered(detail), lambda_context) is None

    assert drain(tap) == []
    output = logs()
    assert "ignored a transaction" in output
    assert TOKEN not in output


@pytest.mark.usefixtures("accounts_table")
def test_an_event_with_a_clear_pan_is_refused_without_echoing_it(
    tap: str, lambda_context: Any, logs: Callable[[], str]
) -> None:
    detail = authorized()
    detail["transaction"]["panToken"] = TEST_PAN

    with pytest.raises(ValidationError) as raised:
        enrich.handler(delivered(detail), lambda_context)

    assert drain(tap) == []
    assert TEST_PAN not in logs()
    # Lambda logs an unhandled error's message: it must not carry the card number.
    assert TEST_PAN not in str(raised.value)
