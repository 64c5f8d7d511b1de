"""The ``source`` of each processor's lifecycle events, and the grant that holds it to them.

The names are the event catalogue's, read from ``domain.event_names.EventSource`` (plain
strings here: jsii would take an enum member for one of its own enums). Each principal may put
events of its own sources only, so a faulty or compromised processor cannot forge another's
event, a ``TransactionApproved`` above all.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam

from payment_posting_functions.domain.event_names import EventSource

INGEST_SOURCE: str = EventSource.INGEST.value
SCREENING_SOURCE: str = EventSource.SCREENING.value
ENRICHMENT_SOURCE: str = EventSource.ENRICHMENT.value
RULES_SOURCE: str = EventSource.RULES.value
POSTING_SOURCE: str = EventSource.POSTING.value
# Review decisions: sent by the operators' case tool, taken by the rules engine.
REVIEW_SOURCE: str = EventSource.REVIEW.value
# The audit records of redrives and replays.
OPERATIONS_SOURCE: str = EventSource.OPERATIONS.value


def grant_publish(
    bus: events.IEventBus,
    grantee: iam.IGrantable,
    sources: Sequence[str],
    *,
    detail_types: Sequence[str] | None = None,
) -> iam.Grant:
    """Let ``grantee`` put events on ``bus`` whose ``source`` is one of ``sources`` (and,
    given ``detail_types``, whose ``detail-type`` is one of those)."""
    if isinstance(sources, str) or not sources:
        raise ValueError(f"grant_publish: sources is a non-empty list of names, got {sources!r}")
    if detail_types is not None and (isinstance(detail_types, str) or not detail_types):
        raise ValueError(
            f"grant_publish: detail_types is a non-empty list of names, got {detail_types!r}"
        )
    conditions: dict[str, list[str]] = {"events:source": list(sources)}
    if detail_types is not None:
        conditions["events:detail-type"] = list(detail_types)
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["events:PutEvents"],
        resource_arns=[bus.event_bus_arn],
        conditions={"StringEquals": conditions},
    )
