"""The lifecycle events of a transaction: one envelope, and the catalogue of every event.

The catalogue is the contract between processors; it is kept here, in one place, and
rendered into docs/events.md by ``python -m payment_posting_functions.domain.events``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, Field

from payment_posting_functions.domain.card_message import MessageClass
from payment_posting_functions.domain.enrichment import Enrichment, FxCheck

# Re-exported: the models' names and sources, for modules that import them from here.
from payment_posting_functions.domain.event_names import EventName as EventName
from payment_posting_functions.domain.event_names import EventSource as EventSource
from payment_posting_functions.domain.model_config import RECORD_CONFIG
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import PostingFailureCode
from payment_posting_functions.domain.transaction import AuthorizedTransaction, UtcDatetime

SCHEMA_VERSION = "1.0"


class _CamelModel(BaseModel):
    # Errors never echo input: a transaction nested in an event may carry a clear PAN.
    model_config = RECORD_CONFIG


class LifecycleEvent(_CamelModel):
    """Fields every lifecycle event detail carries, so any event can be traced on its own."""

    NAME: ClassVar[EventName]
    SOURCE: ClassVar[EventSource]
    # The state a transaction is in after this event; None for side events, which inform
    # without moving the transaction on. TERMINAL states end its lifecycle in this pipeline.
    STATE: ClassVar[str | None] = None
    TERMINAL: ClassVar[bool] = False

    name: EventName
    source: EventSource
    schema_version: str = SCHEMA_VERSION
    transaction_id: str
    occurred_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))

    def to_detail(self) -> dict[str, Any]:
        """The event detail as JSON-ready data, camelCase, the way it travels on the bus."""
        return self.model_dump(mode="json", by_alias=True)


class StreamPosition(_CamelModel):
    """Where a record came from: its table key (a key holding a card number is redacted) and
    stream sequence number, which together name its item in the quarantine table."""

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
    STATE: ClassVar[str | None] = "authorized"

    name: EventName = EventName.TRANSACTION_AUTHORIZED
    source: EventSource = EventSource.INGEST
    screening: Screening
    transaction: AuthorizedTransaction | None = None
    origin: StreamPosition | None = None


class DuplicateFlagged(LifecycleEvent):
    """A likely duplicate of an earlier authorization; its lifecycle ends here (terminal)."""

    NAME: ClassVar[EventName] = EventName.DUPLICATE_FLAGGED
    SOURCE: ClassVar[EventSource] = EventSource.SCREENING
    STATE: ClassVar[str | None] = "flagged duplicate"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.DUPLICATE_FLAGGED
    source: EventSource = EventSource.SCREENING
    duplicate_of: str
    fingerprint: str


class TransactionQuarantined(LifecycleEvent):
    """A malformed record set aside with its reason, to be repaired and resent (terminal)."""

    NAME: ClassVar[EventName] = EventName.TRANSACTION_QUARANTINED
    SOURCE: ClassVar[EventSource] = EventSource.SCREENING
    STATE: ClassVar[str | None] = "quarantined"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.TRANSACTION_QUARANTINED
    source: EventSource = EventSource.SCREENING
    reason: str
    origin: StreamPosition | None = None


class TransactionEnriched(LifecycleEvent):
    """The transaction with its account context, ready for the business rules."""

    NAME: ClassVar[EventName] = EventName.TRANSACTION_ENRICHED
    SOURCE: ClassVar[EventSource] = EventSource.ENRICHMENT
    STATE: ClassVar[str | None] = "enriched"

    name: EventName = EventName.TRANSACTION_ENRICHED
    source: EventSource = EventSource.ENRICHMENT
    transaction: AuthorizedTransaction
    enrichment: Enrichment
    # The replay (EventBridge's replay-name) whose archived event this answers: the rules
    # that follow repeat outcomes already published, and notify nobody again.
    replay_of: str | None = None


class ForeignTransactionFound(LifecycleEvent):
    """Side event: paid in another currency than billed, with the conversion applied."""

    NAME: ClassVar[EventName] = EventName.FOREIGN_TRANSACTION_FOUND
    SOURCE: ClassVar[EventSource] = EventSource.RULES

    name: EventName = EventName.FOREIGN_TRANSACTION_FOUND
    source: EventSource = EventSource.RULES
    transaction_amount: Money
    billing_amount: Money
    conversion_rate: Decimal
    fx: FxCheck


class MerchantCategoryWarning(LifecycleEvent):
    """Side event: the merchant category is on the watched list."""

    NAME: ClassVar[EventName] = EventName.MERCHANT_CATEGORY_WARNING
    SOURCE: ClassVar[EventSource] = EventSource.RULES

    name: EventName = EventName.MERCHANT_CATEGORY_WARNING
    source: EventSource = EventSource.RULES
    mcc: str
    merchant_id: str


class TransactionRejected(LifecycleEvent):
    """Failed a validation rule; the reason code says which (terminal)."""

    NAME: ClassVar[EventName] = EventName.TRANSACTION_REJECTED
    SOURCE: ClassVar[EventSource] = EventSource.RULES
    STATE: ClassVar[str | None] = "rejected"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.TRANSACTION_REJECTED
    source: EventSource = EventSource.RULES
    reason_code: str
    reason: str
    transaction: AuthorizedTransaction
    enrichment: Enrichment


class TransactionHeld(LifecycleEvent):
    """Held for a person to review (high value, or an account with holds): it ends here
    unless a ``ReviewDecided`` comes for it (terminal until then)."""

    NAME: ClassVar[EventName] = EventName.TRANSACTION_HELD
    SOURCE: ClassVar[EventSource] = EventSource.RULES
    STATE: ClassVar[str | None] = "held for review"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.TRANSACTION_HELD
    source: EventSource = EventSource.RULES
    reasons: list[str]
    transaction: AuthorizedTransaction
    enrichment: Enrichment


class TransactionApproved(LifecycleEvent):
    """Passed every rule: the transaction and its enrichment, ready to post."""

    NAME: ClassVar[EventName] = EventName.TRANSACTION_APPROVED
    SOURCE: ClassVar[EventSource] = EventSource.RULES
    STATE: ClassVar[str | None] = "approved"

    name: EventName = EventName.TRANSACTION_APPROVED
    source: EventSource = EventSource.RULES
    transaction: AuthorizedTransaction
    enrichment: Enrichment


class TransactionPosted(LifecycleEvent):
    """Posted to the receiving account (or to suspense) by the posting system (terminal)."""

    NAME: ClassVar[EventName] = EventName.TRANSACTION_POSTED
    SOURCE: ClassVar[EventSource] = EventSource.POSTING
    STATE: ClassVar[str | None] = "posted"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.TRANSACTION_POSTED
    source: EventSource = EventSource.POSTING
    posting_id: str
    posting_status: str  # POSTED, or ALREADY_POSTED when a repeat moved nothing
    account_id: str
    counter_account_id: str
    amount: Money
    direction: str
    posting_system: str  # "ledger" or "http"
    message_class: MessageClass = MessageClass.FINANCIAL
    # Posted although a check would have refused it: an advice (decided elsewhere), or a
    # clearing without a matching authorization (the scheme has settled). Says why.
    forced_reason: str | None = None
    # A refund's original, where it is known: the ledger id of the original's transfer.
    original_id: str | None = None


class PostingFailed(LifecycleEvent):
    """The posting system refused the posting for good; the reason says why (terminal)."""

    NAME: ClassVar[EventName] = EventName.POSTING_FAILED
    SOURCE: ClassVar[EventSource] = EventSource.POSTING
    STATE: ClassVar[str | None] = "posting failed"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.POSTING_FAILED
    source: EventSource = EventSource.POSTING
    reason_code: PostingFailureCode
    reason: str  # the fixed text of the code (FAILURE_REASONS), never the system's words
    account_id: str
    amount: Money
    posting_system: str


class AuthorizationHeld(LifecycleEvent):
    """An authorization placed a hold (a pending transfer): available drops, posted does not,
    until a clearing posts it, a reversal voids it or it expires (terminal for the message)."""

    NAME: ClassVar[EventName] = EventName.AUTHORIZATION_HELD
    SOURCE: ClassVar[EventSource] = EventSource.POSTING
    STATE: ClassVar[str | None] = "authorization held"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.AUTHORIZATION_HELD
    source: EventSource = EventSource.POSTING
    pending_id: str = Field(description="the hold's ledger id (the authorization's own)")
    posting_status: str  # POSTED, or ALREADY_POSTED when a repeat moved nothing
    account_id: str
    counter_account_id: str
    amount: Money
    hold_seconds: int = Field(description="how long the hold waits for its clearing")
    forced_reason: str | None = None
    posting_system: str


class ClearingMatched(LifecycleEvent):
    """A clearing posted (part of) the hold of its authorization (terminal for the message)."""

    NAME: ClassVar[EventName] = EventName.CLEARING_MATCHED
    SOURCE: ClassVar[EventSource] = EventSource.POSTING
    STATE: ClassVar[str | None] = "cleared"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.CLEARING_MATCHED
    source: EventSource = EventSource.POSTING
    pending_id: str
    posting_status: str
    account_id: str
    counter_account_id: str
    amount: Money = Field(description="the clearing's final amount, posted")
    excess: int = Field(description="minor units above the hold, within the tolerance")
    final: bool = Field(description="the last clearing: what is left of the hold is released")
    posting_system: str


class ReversalApplied(LifecycleEvent):
    """A reversal undid (part of) its original: a hold voided, or what was posted corrected
    by a transfer the other way (terminal for the message)."""

    NAME: ClassVar[EventName] = EventName.REVERSAL_APPLIED
    SOURCE: ClassVar[EventSource] = EventSource.POSTING
    STATE: ClassVar[str | None] = "reversed"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.REVERSAL_APPLIED
    source: EventSource = EventSource.POSTING
    original_id: str = Field(description="the ledger id of the original's transfer")
    applied_as: str = Field(description="VOID (of a hold) or CORRECTION (of a posting)")
    posting_status: str
    account_id: str
    amount: Money = Field(description="what the reversal undid")
    partial: bool
    posting_system: str


class HoldExpired(LifecycleEvent):
    """Side event: an authorization hold was not cleared in its window and was released.
    ``transactionId`` is the authorization's."""

    NAME: ClassVar[EventName] = EventName.HOLD_EXPIRED
    SOURCE: ClassVar[EventSource] = EventSource.POSTING

    name: EventName = EventName.HOLD_EXPIRED
    source: EventSource = EventSource.POSTING
    pending_id: str
    account_id: str
    released: Money


class InquiryCompleted(LifecycleEvent):
    """A balance or available-funds inquiry: completed, no money moved (terminal)."""

    NAME: ClassVar[EventName] = EventName.INQUIRY_COMPLETED
    SOURCE: ClassVar[EventSource] = EventSource.RULES
    STATE: ClassVar[str | None] = "completed, no money moved"
    TERMINAL: ClassVar[bool] = True

    name: EventName = EventName.INQUIRY_COMPLETED
    source: EventSource = EventSource.RULES
    transaction: AuthorizedTransaction
    enrichment: Enrichment


class ReviewDecision(StrEnum):
    APPROVE = "APPROVE"
    DECLINE = "DECLINE"


class ReviewDecided(LifecycleEvent):
    """A person's decision on a transaction held for review; the rules engine takes it and
    publishes the outcome (approved: on to posting; declined: rejected)."""

    NAME: ClassVar[EventName] = EventName.REVIEW_DECIDED
    SOURCE: ClassVar[EventSource] = EventSource.REVIEW

    name: EventName = EventName.REVIEW_DECIDED
    source: EventSource = EventSource.REVIEW
    decision: ReviewDecision
    reviewer: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$", description="who decided")


CATALOGUE: tuple[type[LifecycleEvent], ...] = (
    TransactionAuthorized,
    DuplicateFlagged,
    TransactionQuarantined,
    TransactionEnriched,
    ForeignTransactionFound,
    MerchantCategoryWarning,
    TransactionRejected,
    TransactionHeld,
    TransactionApproved,
    TransactionPosted,
    PostingFailed,
    AuthorizationHeld,
    ClearingMatched,
    ReversalApplied,
    HoldExpired,
    InquiryCompleted,
    ReviewDecided,
)
BY_NAME: dict[str, type[LifecycleEvent]] = {event.NAME.value: event for event in CATALOGUE}


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return " \\| ".join(_type_name(arg) for arg in get_args(annotation))
    if annotation is type(None):
        return "None"
    if origin is None and hasattr(annotation, "__name__"):
        return str(annotation.__name__)
    # "dict[str, str]" and the like: drop module paths, keep the shape.
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", str(annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _field_table(model: type[BaseModel]) -> list[str]:
    lines = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        lines.append(
            f"| `{field.alias or name}` | {_type_name(field.annotation)} "
            f"| {'yes' if field.is_required() else 'no'} | {field.description or ''} |"
        )
    return lines


def render_catalogue() -> str:
    """The event catalogue as Markdown: each event's source and detail, then the shared types."""
    lines = [
        "# Event catalogue",
        "",
        "Generated from `lambdas/payment_posting_functions/domain/events.py` by"
        " `make events-doc`; do not edit by hand.",
        f"Every event detail carries schema version `{SCHEMA_VERSION}`; `detail-type` is the"
        " event name.",
        "",
    ]
    shared: list[type[BaseModel]] = []
    pending = [model for event in CATALOGUE for f in event.model_fields.values()
               for model in _models_in(f.annotation)]  # fmt: skip
    while pending:
        model = pending.pop(0)
        if model not in shared:
            shared.append(model)
            pending += [m for f in model.model_fields.values() for m in _models_in(f.annotation)]
    for event in CATALOGUE:
        doc = (event.__doc__ or "").strip().splitlines()[0]
        kind = "terminal" if event.TERMINAL else ("side event" if event.STATE is None else "")
        lines += [
            f"## {event.NAME.value}",
            "",
            f"Source `{event.SOURCE.value}`."
            + (f" State after it: {event.STATE}." if event.STATE else "")
            + (f" ({kind})" if kind else "")
            + f" {doc}",
            "",
        ]
        lines += [*_field_table(event), ""]
    lines += ["## Shared types", ""]
    for model in shared:
        doc = ((model.__doc__ or "").strip().splitlines() or [""])[0]
        lines += [f"### {model.__name__}", "", doc, "", *_field_table(model), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_catalogue())
