from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payment_posting_functions.domain.dedup import InMemoryFingerprintStore
from payment_posting_functions.domain.events import StreamPosition
from payment_posting_functions.domain.screening import (
    InvalidRecord,
    Screener,
    parse_record,
    stream_position,
)
from tests.factories import TEST_PAN, valid_item

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def origin(transaction_id: str) -> StreamPosition:
    return StreamPosition(table_key={"transactionId": transaction_id}, sequence_number="100")


@pytest.fixture
def screener() -> Screener:
    return Screener(InMemoryFingerprintStore(), timedelta(minutes=10), clock=lambda: NOW)


def test_a_valid_record_is_authorized_with_its_transaction(screener: Screener) -> None:
    event = screener.screen(parse_record(valid_item(), origin("x")))
    assert event.screening.valid
    assert not event.screening.duplicate
    assert event.transaction is not None
    assert event.transaction_id == valid_item()["transactionId"]
    assert event.occurred_at == NOW
    assert event.screening.fingerprint is not None


def test_a_retransmission_inside_the_window_is_a_duplicate(screener: Screener) -> None:
    screener.screen(parse_record(valid_item(), origin("a")))
    retry = valid_item(transactionId="retry-00000001", transmittedAt="2026-11-24T10:25:30Z")
    event = screener.screen(parse_record(retry, origin("b")))
    assert event.screening.duplicate
    assert event.screening.duplicate_of == valid_item()["transactionId"]


def test_the_same_authorization_outside_the_window_is_not_a_duplicate(
    screener: Screener,
) -> None:
    screener.screen(parse_record(valid_item(), origin("a")))
    later = valid_item(transactionId="later-00000001", transmittedAt="2026-11-24T10:25:30.251Z")
    assert not screener.screen(parse_record(later, origin("b"))).screening.duplicate


def test_a_malformed_record_goes_on_flagged_invalid_with_where_to_find_it(
    screener: Screener,
) -> None:
    item = valid_item(panToken=TEST_PAN)
    parsed = parse_record(item, origin(item["transactionId"]))
    assert isinstance(parsed, InvalidRecord)

    event = screener.screen(parsed)

    assert not event.screening.valid
    assert event.screening.invalid_reason is not None
    assert "panToken" in event.screening.invalid_reason
    assert event.transaction is None
    assert event.origin == origin(item["transactionId"])
    assert TEST_PAN not in event.model_dump_json()


@pytest.mark.parametrize(
    ("key", "reported"),
    [
        (TEST_PAN, "redacted-key-4200"),
        (f"tx_{TEST_PAN}", "redacted-key-4200"),
        (f"{TEST_PAN}-retry", "redacted-key-4200"),
        (None, "unknown"),
        ("k-1", "k-1"),
        ("tx_4111111111111112", "tx_4111111111111112"),  # fails Luhn: not a card number
    ],
)
def test_the_id_reported_for_an_invalid_record_never_holds_a_card_number(
    key: str | None, reported: str
) -> None:
    position = stream_position({"transactionId": key} if key else {}, "4200")
    parsed = parse_record({"transactionId": key}, position)
    assert isinstance(parsed, InvalidRecord)
    assert parsed.transaction_id == reported
    assert position.table_key.get("transactionId", "unknown") == reported


def test_a_redacted_key_without_a_sequence_number_still_names_no_card() -> None:
    assert stream_position({"transactionId": TEST_PAN}, None).table_key == {
        "transactionId": "redacted-key-unknown"
    }


@pytest.mark.parametrize("window", [timedelta(0), timedelta(seconds=-1)])
def test_a_non_positive_window_is_refused(window: timedelta) -> None:
    with pytest.raises(ValueError, match="window must be positive"):
        Screener(InMemoryFingerprintStore(), window)
