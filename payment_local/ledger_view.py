"""The stack's built-in ledger (v2) seen from the local runtime: what a report or the CLI
shows of it. The report's trial balance is the ledger's own (from balance items, never the
journal), one per currency.
"""

from __future__ import annotations

from typing import Any

from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger
from payment_posting_functions.domain.ledger_v2.model import (
    Balance,
    Entry,
    PendingState,
    TrialBalance,
)

JOURNAL_TABLE_OUTPUT = "LedgerJournalTableName"
BALANCES_TABLE_OUTPUT = "LedgerBalancesTableName"


def ledger_of(runtime: LocalRuntime) -> DynamoDBLedger | None:
    """The stack's built-in ledger, if it has one (found through its outputs)."""
    try:
        journal = runtime.output(JOURNAL_TABLE_OUTPUT)
        balances = runtime.output(BALANCES_TABLE_OUTPUT)
    except KeyError:
        return None
    return DynamoDBLedger(runtime.clients.dynamodb, journal, balances)


def account_ids(runtime: LocalRuntime) -> list[str]:
    """Every account opened in the ledger: a local listing (a Scan of the balances table's
    account items), for reports; the posting path never lists accounts."""
    return sorted(
        item["accountId"]["S"]
        for item in _scan(
            runtime,
            BALANCES_TABLE_OUTPUT,
            FilterExpression="sk = :account",
            ExpressionAttributeValues={":account": {"S": "ACCOUNT"}},
        )
    )


def trial_balance_reads(runtime: LocalRuntime, ledger: DynamoDBLedger) -> dict[str, TrialBalance]:
    """The ledger's trial balance per currency, with the window its balance items were read
    in (``read_from`` .. ``read_to``): what it is as of."""
    currencies = {
        item["currency"]["S"]
        for item in _scan(
            runtime,
            BALANCES_TABLE_OUTPUT,
            FilterExpression="sk = :account",
            ExpressionAttributeValues={":account": {"S": "ACCOUNT"}},
        )
    }
    return {c: ledger.trial_balance(c) for c in sorted(currencies)}


def balances(runtime: LocalRuntime, ledger: DynamoDBLedger) -> list[Balance]:
    """Every account's balance (a house account's summed over its shards), for reports."""
    return [ledger.balance(account_id) for account_id in account_ids(runtime)]


def pendings(runtime: LocalRuntime, ledger: DynamoDBLedger) -> list[PendingState]:
    """Every pending transfer (authorization hold) the ledger keeps, whatever its status:
    a local listing (a Scan of the balances table's pending items), each then read as the
    ledger reads it; reports and the local run only, the posting path never lists them."""
    found = _scan(
        runtime,
        BALANCES_TABLE_OUTPUT,
        FilterExpression="begins_with(pk, :pending)",
        ExpressionAttributeValues={":pending": {"S": "PENDING#"}},
        ProjectionExpression="pendingId",
    )
    read = (ledger.pending(pending_id) for pending_id in sorted(i["pendingId"]["S"] for i in found))
    return [pending for pending in read if pending is not None]


def entries(runtime: LocalRuntime) -> list[Entry]:
    """Every entry of the journal (a local Scan: reports only)."""
    return [
        Entry.model_validate_json(item["record"]["S"])
        for item in _scan(
            runtime,
            JOURNAL_TABLE_OUTPUT,
            FilterExpression="begins_with(sk, :entry)",
            ExpressionAttributeValues={":entry": {"S": "ENTRY#"}},
        )
    ]


def dump(runtime: LocalRuntime, ledger: DynamoDBLedger) -> dict[str, Any]:
    """What ``payments-local balances`` and ``trial-balance`` read: balances and entries in
    the CLI's dump format."""
    balances = []
    for account_id in account_ids(runtime):
        balance = ledger.balance(account_id)
        balances.append(
            {
                "accountId": account_id,
                "currency": balance.currency,
                "posted": balance.posted,
                "available": balance.available,
            }
        )
    return {
        "balances": balances,
        "entries": [
            {
                "accountId": e.account_id,
                "counterAccountId": e.counter_account_id,
                "transactionId": e.transfer_id,
                "amount": e.posted,
                "currency": e.currency,
                "postedAt": e.timestamp.isoformat(),
            }
            for e in sorted(entries(runtime), key=lambda e: (e.timestamp, e.transfer_id))
        ],
    }


def _scan(runtime: LocalRuntime, output: str, **request: Any) -> list[dict[str, Any]]:
    table = runtime.output(output)
    items: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while True:
        page = runtime.clients.dynamodb.scan(
            TableName=table, **request, **({"ExclusiveStartKey": start} if start else {})
        )
        items += page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items
