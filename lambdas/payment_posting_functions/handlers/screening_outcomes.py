"""Duplicate and quarantine processor: ends the lifecycle of what ingest screening flagged.

A duplicate becomes ``DuplicateFlagged`` and a notification (ids only, no card data); a
malformed record becomes ``TransactionQuarantined`` with its reason and where to find it.
Both are terminal. Invoked asynchronously by EventBridge rules; failures raise and are
retried, then sent to the function's failure queue.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from payment_posting_functions.domain.latency import milliseconds_since
from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.handlers.tracing import capture_lambda_handler

# The domain (its pydantic models) is imported where it is used, on the first invocation, not
# here: docs/adr/0024-lazy-imports-on-the-payment-path.md.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from payment_posting_functions.domain.publisher import EventPublisher

logger = payment_logger()
metrics = Metrics()


@cache
def publisher() -> EventPublisher:
    from payment_posting_functions.domain.publisher import EventPublisher

    return EventPublisher(boto3.client("events"), os.environ["EVENT_BUS_NAME"])


# The field EventBridge adds to an event it replays from an archive.
REPLAY_NAME = "replay-name"


@cache
def sns() -> Any:
    return boto3.client("sns")


@logger.inject_lambda_context(log_event=False)
@capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    from payment_posting_functions.domain.events import (
        DuplicateFlagged,
        TransactionAuthorized,
        TransactionQuarantined,
    )

    authorized = TransactionAuthorized.model_validate(event["detail"])
    screening = authorized.screening
    if not screening.valid:
        publisher().publish(
            [
                TransactionQuarantined(
                    transaction_id=authorized.transaction_id,
                    reason=screening.invalid_reason or "invalid record",
                    origin=authorized.origin,
                )
            ]
        )
        metrics.add_metric(name="TransactionsQuarantined", unit=MetricUnit.Count, value=1)
        logger.info("quarantined a record", extra={"transactionId": authorized.transaction_id})
    elif screening.duplicate and screening.duplicate_of and screening.fingerprint:
        flagged = DuplicateFlagged(
            transaction_id=authorized.transaction_id,
            duplicate_of=screening.duplicate_of,
            fingerprint=screening.fingerprint,
        )
        publisher().publish([flagged])
        # A replay from the archive carries replay-name (EventBridge sets it): the event is
        # published again (downstream is idempotent), but people were told the first time.
        if REPLAY_NAME not in event:
            sns().publish(
                TopicArn=os.environ["NOTIFICATION_TOPIC_ARN"],
                Subject="Likely duplicate authorization",
                Message=json.dumps(
                    {
                        "event": flagged.name.value,
                        "transactionId": flagged.transaction_id,
                        "duplicateOf": flagged.duplicate_of,
                    }
                ),
            )
        metrics.add_metric(name="DuplicatesFlagged", unit=MetricUnit.Count, value=1)
        if authorized.transaction is not None:
            # From the authorization to this terminal outcome. A quarantined record has no
            # trusted transmission time (it is what failed validation), so it records none.
            metrics.add_metric(
                name="EndToEndLatency",
                unit=MetricUnit.Milliseconds,
                value=milliseconds_since(authorized.transaction.transmitted_at),
            )
        logger.info("flagged a duplicate", extra={"transactionId": authorized.transaction_id})
    else:
        logger.warning("ignored a transaction that was neither invalid nor a duplicate",
                       extra={"transactionId": authorized.transaction_id})  # fmt: skip
