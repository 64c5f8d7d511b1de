"""Sample source ("visa-mock"): writes N generated transactions to the transactions table.

Invoke with ``{"count": 100}`` and optionally a ``seed`` and the generator's rates, e.g.
``{"count": 500, "seed": 7, "duplicateRate": 0.1, "malformedRate": 0.02}``. The card lifecycle
(the demo's ``LIFECYCLE_MIX``: authorizations cleared later in the stream, ATM and debit PIN
messages, reversals, refunds, inquiries) is written unless ``"lifecycle": false`` asks for
single messages only.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.handlers.tracing import capture_lambda_handler

# The request model, the generator and the tables (pydantic models) are imported where they
# are used, on the first invocation, not here: docs/adr/0024-lazy-imports-on-the-payment-path.md.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from payment_posting_functions.domain.account_table import AccountTable
    from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger
    from payment_posting_functions.domain.transaction_table import TransactionTable

logger = payment_logger()


@cache
def account_table() -> AccountTable | None:
    from payment_posting_functions.domain.account_table import AccountTable

    name = os.environ.get("ACCOUNTS_TABLE_NAME")
    return AccountTable(boto3.resource("dynamodb").Table(name)) if name else None


@cache
def ledger() -> DynamoDBLedger | None:
    """The stack's built-in ledger, when it has one (an HTTP target has none)."""
    from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger

    journal = os.environ.get("LEDGER_JOURNAL_TABLE_NAME")
    balances = os.environ.get("LEDGER_BALANCES_TABLE_NAME")
    if not (journal and balances):
        return None
    return DynamoDBLedger(boto3.client("dynamodb"), journal, balances)


@cache
def transaction_table() -> TransactionTable:
    from payment_posting_functions.domain.transaction_table import TransactionTable

    resource = boto3.resource("dynamodb")
    retention = timedelta(seconds=int(os.environ["RETENTION_SECONDS"]))
    return TransactionTable(resource.Table(os.environ["TRANSACTIONS_TABLE_NAME"]), retention)


@logger.inject_lambda_context(log_event=False)
@capture_lambda_handler
def handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    from payment_posting_functions.domain.accounts import sample_accounts
    from payment_posting_functions.domain.generator import (
        LIFECYCLE_MIX,
        Knobs,
        TransactionGenerator,
    )
    from payment_posting_functions.domain.ledger_v2.sample_accounts import open_sample_accounts
    from payment_posting_functions.domain.source_request import SourceRequest

    request = SourceRequest.model_validate(event or {})
    rates = request.model_dump(exclude={"count", "seed", "lifecycle"})
    knobs = dataclasses.replace(LIFECYCLE_MIX, **rates) if request.lifecycle else Knobs(**rates)
    records = list(TransactionGenerator(knobs=knobs, seed=request.seed).generate(request.count))
    accounts = account_table()
    if accounts is not None:
        # The sample directory, so enrichment finds the sample accounts (idempotent puts).
        accounts.put_all(sample_accounts())
    books = ledger()
    if books is not None:
        # Ledger v2 posts only to open accounts (others go to suspense): open them first.
        open_sample_accounts(books)
    written = transaction_table().put_all(record.item for record in records)
    kinds = Counter(record.kind.value for record in records)
    logger.info("wrote sample transactions", extra={"written": written, **kinds})
    return {"written": written, "kinds": dict(kinds)}
