"""Enrichment processor: adds account context to an authorized transaction.

Invoked asynchronously by an EventBridge rule. A failure (the accounts table unreachable, the
bus refusing the event) raises, so Lambda retries the event and then sends it to the
function's failure queue: a transaction is never silently dropped here.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.handlers.tracing import capture_lambda_handler

# The domain (its pydantic models) is imported where it is used, on the first invocation, not
# here: docs/adr/0024-lazy-imports-on-the-payment-path.md.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from payment_posting_functions.domain.account_table import AccountTable
    from payment_posting_functions.domain.publisher import EventPublisher

logger = payment_logger()
metrics = Metrics()


@cache
def accounts() -> AccountTable:
    from payment_posting_functions.domain.account_table import AccountTable

    return AccountTable(boto3.resource("dynamodb").Table(os.environ["ACCOUNTS_TABLE_NAME"]))


@cache
def publisher() -> EventPublisher:
    from payment_posting_functions.domain.publisher import EventPublisher

    return EventPublisher(boto3.client("events"), os.environ["EVENT_BUS_NAME"])


@logger.inject_lambda_context(log_event=False)  # the event holds card data: never log it
@capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    from payment_posting_functions.domain.enrichment import enrich
    from payment_posting_functions.domain.events import TransactionAuthorized, TransactionEnriched

    authorized = TransactionAuthorized.model_validate(event["detail"])
    transaction = authorized.transaction
    if transaction is None or not authorized.screening.valid or authorized.screening.duplicate:
        # The rule sends only valid first sightings; anything else is a routing mistake that
        # another processor owns, so it is left alone rather than enriched twice.
        logger.warning("ignored a transaction the enrichment rule should not have sent",
                       extra={"transactionId": authorized.transaction_id})  # fmt: skip
        return
    account = accounts().find(transaction.account_id)
    enrichment = enrich(transaction, account)
    publisher().publish(
        [
            TransactionEnriched(
                transaction_id=authorized.transaction_id,
                transaction=transaction,
                enrichment=enrichment,
                # A replayed authorization is a repeat: the rules must know, to tell nobody twice.
                replay_of=event.get("replay-name"),
            )
        ]
    )
    metrics.add_metric(name="TransactionsEnriched", unit=MetricUnit.Count, value=1)
    if not enrichment.account_found:
        metrics.add_metric(name="UnknownAccounts", unit=MetricUnit.Count, value=1)
    # DEBUG: a line per transaction is what the per-stage level keeps out of CloudWatch Logs
    # (the TransactionsEnriched and UnknownAccounts metrics count them at every level).
    logger.debug(
        "enriched a transaction",
        extra={
            "transactionId": authorized.transaction_id,
            "accountFound": enrichment.account_found,
        },
    )
