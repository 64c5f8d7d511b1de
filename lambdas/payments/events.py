"""The lifecycle events of a transaction: one envelope, and the catalogue of every event.

The catalogue is the contract between processors; it is kept here, in one place, and
rendered into docs/events.md by ``python -m payments.events``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from payments.transaction import AuthorizedTransaction, UtcDatetime

SCHEMA_VERSION = "1.0"


class EventSource(StrEnum):
    """The ``source`` of events on the bus, one per processor."""

    INGEST = "payments.ingest"


class EventName(StrEnum):
    """The ``detail-type`` of events on the bus."""

    TRANSACTION_AUTHORIZED = "TransactionAuthorized"


class _CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class LifecycleEvent(_CamelModel):
    """Fields every lifecycle event detail carries, so any event can be traced on its own."""

    NAME: ClassVar[EventName]
    SOURCE: ClassVar[EventSource]

    name: EventName
    source: EventSource
    schema_version: str = SCHEMA_VERSION
    transaction_id: str
    occurred_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))

    def to_detail(self) -> dict[str, Any]:
        """The event detail as JSON-ready data, camelCase, the way it travels on the bus."""
        return self.model_dump(mode="json", by_alias=True)


class StreamPosition(_CamelModel):
    """Where a record came from, so a quarantined record can be read back from the table."""

    table_key: dict[str, str]
    sequence_number: str | None = None


class Screening(_CamelModel):
    """What ingest screening concluded about a record: well formed or not, duplicate or not."""

    valid: bool
    invalid_reason: str | None = None
    duplicate: bool = False
    duplicate_of: str | None = Field(
        default=None, description="transaction id of the first sighting"
    )
    fingerprint: str | None = None


class TransactionAuthorized(LifecycleEvent):
    """A record read from the transactions table and screened by the deduplication step.

    Valid records carry the transaction; a malformed record carries no transaction (its values
    may hold card data) but its reason and where to find it, so it can be quarantined.
    """

    NAME: ClassVar[EventName] = EventName.TRANSACTION_AUTHORIZED
    SOURCE: ClassVar[EventSource] = EventSource.INGEST

    name: EventName = EventName.TRANSACTION_AUTHORIZED
    source: EventSource = EventSource.INGEST
    screening: Screening
    transaction: AuthorizedTransaction | None = None
    origin: StreamPosition | None = None


CATALOGUE: tuple[type[LifecycleEvent], ...] = (TransactionAuthorized,)


def render_catalogue() -> str:
    """The event catalogue as Markdown: name, source and the fields of each detail."""
    lines = [
        "# Event catalogue",
        "",
        "Generated from `lambdas/payments/events.py` by `python -m payments.events`;"
        " do not edit by hand.",
        f"Every event detail carries schema version `{SCHEMA_VERSION}`.",
        "",
    ]
    for event in CATALOGUE:
        lines += [
            f"## {event.NAME.value}",
            "",
            f"- source: `{event.SOURCE.value}`",
            f"- {(event.__doc__ or '').strip().splitlines()[0]}",
            "",
            "| field | type | required |",
            "| --- | --- | --- |",
        ]
        for name, field in event.model_fields.items():
            alias = field.alias or name
            annotation = getattr(field.annotation, "__name__", str(field.annotation))
            annotation = annotation.replace("payments.", "").replace("|", "\\|")
            lines.append(f"| `{alias}` | {annotation} | {'yes' if field.is_required() else 'no'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_catalogue())
