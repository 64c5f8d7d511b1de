"""Ledger v2's laws for any interleaving of operations (the machine is in
``tests/ledger_v2_machine.py``): on the in-memory reference, and on the DynamoDB ledger (moto)
with the reference alongside, which must give the same outcome for every step and end with
the same balances and pendings."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import count
from typing import Any

import boto3
import pytest
from hypothesis import settings
from moto import mock_aws

from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger, table_definitions
from payment_posting_functions.domain.ledger_v2.reference import InMemoryLedger
from tests.ledger_v2_machine import Clock, LedgerMachine


class ReferenceMachine(LedgerMachine):
    def create_ledger(self, clock: Clock) -> tuple[Any, Callable[[], None]]:
        return InMemoryLedger(clock=clock), lambda: None


_tables = count()
_moto = mock_aws()


@cache
def _moto_client() -> Any:
    """One moto for every example (starting and stopping it costs more than an example's
    steps); each example gets tables of its own. ``teardown_module`` stops it."""
    _moto.start()
    return boto3.client("dynamodb")


def teardown_module() -> None:
    if _moto_client.cache_info().currsize:
        _moto_client.cache_clear()
        _moto.stop()


class DynamoDBMachine(LedgerMachine):
    differential = True

    def create_ledger(self, clock: Clock) -> tuple[Any, Callable[[], None]]:
        client = _moto_client()
        number = next(_tables)
        journal, balances = f"journal-{number}", f"balances-{number}"
        for definition in table_definitions(journal, balances):
            client.create_table(**definition)

        def drop() -> None:
            for table in (journal, balances):
                client.delete_table(TableName=table)

        # Few shards, so that house legs share shards and the merges are exercised.
        return DynamoDBLedger(client, journal, balances, clock=clock, house_shards=3), drop


ReferenceMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestReferenceLedger = ReferenceMachine.TestCase

# Each step on moto costs milliseconds (it copies the tables per transaction): few examples
# here, checked step by step against the reference, which runs 150 above.
DynamoDBMachine.TestCase.settings = settings(max_examples=6, stateful_step_count=30, deadline=None)
TestDynamoDBLedger = pytest.mark.slow(DynamoDBMachine.TestCase)
