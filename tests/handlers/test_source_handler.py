from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from payment_posting_functions.domain.source_request import MAX_COUNT
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_posting_functions.domain.transaction_table import EXPIRES_AT
from payment_posting_functions.handlers import source
from tests.handlers.conftest import RETENTION_SECONDS


def scan(table: str) -> list[dict[str, Any]]:
    return list(boto3.resource("dynamodb").Table(table).scan()["Items"])


def test_writes_the_requested_number_of_records(
    transactions_table: str, lambda_context: Any
) -> None:
    before = int(time.time())
    result = source.handler({"count": 80, "seed": 5, "malformedRate": 0.1}, lambda_context)

    items = scan(transactions_table)
    # Every record expires after the stage's retention (the table's time to live).
    for item in items:
        expires = int(item.pop(EXPIRES_AT))
        assert before + RETENTION_SECONDS <= expires <= time.time() + RETENTION_SECONDS
    assert result["written"] == 80 == len(items)
    assert sum(result["kinds"].values()) == 80
    assert result["kinds"]["malformed"] > 0
    valid = 0
    for item in items:
        try:
            AuthorizedTransaction.model_validate(item)
            valid += 1
        except ValidationError:
            pass
    assert valid == 80 - result["kinds"]["malformed"]


def test_an_empty_event_writes_the_default_count(
    transactions_table: str, lambda_context: Any
) -> None:
    assert source.handler({}, lambda_context)["written"] == 100
    assert len(scan(transactions_table)) == 100


def test_it_writes_the_card_lifecycle_unless_asked_for_single_messages(
    transactions_table: str, lambda_context: Any
) -> None:
    source.handler({"count": 200, "seed": 2, "malformedRate": 0}, lambda_context)
    mtis = {item["mti"] for item in scan(transactions_table)}
    # Authorizations, and later in the stream the clearings and reversals that follow them.
    assert {"0100", "0200", "1240"} <= mtis
    assert mtis & {"0400", "0420"}

    for item in scan(transactions_table):
        boto3.resource("dynamodb").Table(transactions_table).delete_item(
            Key={"transactionId": item["transactionId"]}
        )
    source.handler({"count": 100, "seed": 2, "lifecycle": False}, lambda_context)
    assert {item["mti"] for item in scan(transactions_table)} == {"0200"}


@pytest.mark.parametrize(
    "event",
    [{"count": 0}, {"count": MAX_COUNT + 1}, {"duplicateRate": 1.5}, {"colour": "red"}],
)
def test_a_bad_request_is_refused_and_writes_nothing(
    transactions_table: str, lambda_context: Any, event: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        source.handler(event, lambda_context)
    assert scan(transactions_table) == []
