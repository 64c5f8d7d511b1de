from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from payment_posting_functions.domain.events import (
    CATALOGUE,
    SCHEMA_VERSION,
    EventName,
    EventSource,
    Screening,
    TransactionAuthorized,
    render_catalogue,
)
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_detail_is_camel_case_json_with_the_envelope() -> None:
    event = TransactionAuthorized(
        transaction_id="tx-00000001",
        occurred_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        screening=Screening(valid=True, fingerprint="v1:abc"),
        transaction=AuthorizedTransaction.model_validate(valid_item()),
    )
    detail = event.to_detail()
    assert detail["name"] == "TransactionAuthorized"
    assert detail["source"] == "payments.ingest"
    assert detail["schemaVersion"] == SCHEMA_VERSION
    assert detail["transactionId"] == "tx-00000001"
    assert detail["occurredAt"] == "2026-11-24T12:00:00Z"
    assert detail["transaction"]["transactionAmount"] == {"amount": 1250, "currency": "USD"}
    assert detail["transaction"]["conversionRate"] == "0.92150000"  # a string: exact
    assert TransactionAuthorized.model_validate(detail) == event


def test_every_event_name_has_a_catalogue_entry() -> None:
    assert {event.NAME for event in CATALOGUE} == set(EventName)


def test_docs_event_catalogue_is_current() -> None:
    # Regenerate with `make events-doc` when an event model changes.
    assert DOCS.read_text() == render_catalogue() + "\n"


def test_the_constructs_grant_the_sources_the_catalogue_names() -> None:
    # payment_stack holds the source names its grants use; the catalogue is the contract.
    from payment_stack import event_sources

    granted = {
        event_sources.INGEST_SOURCE,
        event_sources.SCREENING_SOURCE,
        event_sources.ENRICHMENT_SOURCE,
        event_sources.RULES_SOURCE,
        event_sources.POSTING_SOURCE,
        event_sources.REVIEW_SOURCE,
    }
    assert granted == {source.value for source in EventSource}
