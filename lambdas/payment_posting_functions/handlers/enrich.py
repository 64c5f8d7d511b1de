"""Enrichment processor: adds account context to an authorized transaction.

Invoked asynchronously by an EventBridge rule. A failure (the accounts table unreachable, the
bus refusing the event) raises, so Lambda retries the event and then sends it to the
function's failure queue: a transaction is never silently dropped here.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payment_posting_functions.domain.account_table import AccountTable
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import TransactionAuthorized, TransactionEnriched
from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.domain.publisher import EventPublisher

logger = payment_logger()
tracer = Tracer()
metrics = Metrics()


@cache
def accounts() -> AccountTable:
    return AccountTable(boto3.resource("dynamodb").Table(os.environ["ACCOUNTS_TABLE_NAME"]))


@cache
def publisher() -> EventPublisher:
    return EventPublisher(boto3.client("events"), os.environ["EVENT_BUS_NAME"])


@logger.inject_lambda_context(log_event=False)  # the event holds card data: never log it
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
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
