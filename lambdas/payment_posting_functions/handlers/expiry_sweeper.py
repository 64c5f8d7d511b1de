"""Expiry sweeper: releases the pending transfers (authorization holds) whose timeout passed.

Invoked by a schedule (an EventBridge rule, every minute by default). The sweep runs as of
the scheduled event's ``time``, not the function's own clock: on AWS the two differ by the
delivery delay (a sweep a few seconds late expires what was due at its tick, and the next
tick takes the rest), and the local runtime advances the time it puts in the event, so a
hold can be seen to expire without waiting for it. DynamoDB TTL is no substitute: it
deletes within days of the time, and a pending must be released, as a transfer, on time.

Each release is published as ``HoldExpired`` (with ``EVENT_BUS_NAME`` set, as the construct
does). The expiry is booked first: an event the bus refuses fails the invocation, which goes
to the sweeper's dead-letter queue with the ids it could not announce, in the log too; the
money was released all the same.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.handlers.tracing import capture_lambda_handler

# The ledger and the events (pydantic models) are imported where they are used, on the first
# invocation, not here: docs/adr/0024-lazy-imports-on-the-payment-path.md.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from payment_posting_functions.domain.events import HoldExpired
    from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger
    from payment_posting_functions.domain.ledger_v2.model import TransferResult
    from payment_posting_functions.domain.publisher import EventPublisher

logger = payment_logger()

# At most this many expiries per sweep: one transfer each, so a sweep stays well inside the
# function's timeout however many holds fall due at once; the rest go at the next tick.
DEFAULT_BATCH = 500


@cache
def ledger() -> DynamoDBLedger:
    from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger

    return DynamoDBLedger(
        boto3.client("dynamodb"),
        os.environ["LEDGER_JOURNAL_TABLE_NAME"],
        os.environ["LEDGER_BALANCES_TABLE_NAME"],
    )


@cache
def publisher() -> EventPublisher | None:
    from payment_posting_functions.domain.publisher import EventPublisher

    bus = os.environ.get("EVENT_BUS_NAME")
    return EventPublisher(boto3.client("events"), bus) if bus else None


def expired_event(result: TransferResult, at: datetime) -> HoldExpired | None:
    """The ``HoldExpired`` of one expiry: the hold's id (its authorization's transaction id),
    the cardholder's side of it and what was released."""
    from payment_posting_functions.domain.events import HoldExpired
    from payment_posting_functions.domain.ledger_v2.house import CLEARING_PREFIX
    from payment_posting_functions.domain.ledger_v2.model import EXPIRE_PREFIX
    from payment_posting_functions.domain.money import Money

    pending_id = result.transfer_id.removeprefix(EXPIRE_PREFIX)
    booked = ledger().lookup_transfer(result.transfer_id)
    if booked is None:  # pragma: no cover - it was just booked, and reads are consistent
        return None
    customer = booked.debit_account_id
    if customer.startswith(CLEARING_PREFIX):
        customer = booked.credit_account_id  # a held refund: the cardholder is credited
    return HoldExpired(
        transaction_id=pending_id,
        occurred_at=at,
        pending_id=pending_id,
        account_id=customer,
        released=Money(amount=booked.amount, currency=booked.transfer.amount.currency),
    )


class UnannouncedExpiriesError(Exception):
    """Holds were released but the bus refused their ``HoldExpired`` events."""


def announce(expired: list[TransferResult], at: datetime) -> None:
    from payment_posting_functions.domain.publisher import Entry

    bus = publisher()
    if bus is None or not expired:
        return
    events = [e for result in expired if (e := expired_event(result, at)) is not None]
    refused = bus.put([Entry.of(event) for event in events])
    if refused:
        ids = sorted(events[index].pending_id for index in refused)
        logger.error("released holds not announced", extra={"pendingIds": ids})
        raise UnannouncedExpiriesError(f"{len(ids)} HoldExpired events refused by the bus")


def sweep_time(event: dict[str, Any] | None) -> datetime:
    """The scheduled event's ``time``; the function's clock when invoked by hand."""
    stamp = (event or {}).get("time")
    if not stamp:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"the event's time is not an ISO 8601 timestamp: {stamp!r}") from None
    if at.tzinfo is None:
        raise ValueError(f"the event's time has no time zone: {stamp!r}")
    return at.astimezone(UTC)


@logger.inject_lambda_context(log_event=False)
@capture_lambda_handler
def handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    at = sweep_time(event)
    batch = int(os.environ.get("EXPIRY_BATCH", DEFAULT_BATCH))
    expired = ledger().expire_due(at, limit=batch)
    announce(expired, at)
    more = len(expired) == batch
    logger.info(
        "expiry sweep",
        extra={"asOf": at.isoformat(), "expired": len(expired), "moreDue": more},
    )
    return {"asOf": at.isoformat(), "expired": len(expired), "moreDue": more}
