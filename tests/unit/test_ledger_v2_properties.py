"""Ledger v2's laws on the in-memory reference, for any interleaving of operations (the
machine is in ``tests/ledger_v2_machine.py``; the DynamoDB ledger runs the same machine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import settings

from payment_posting_functions.domain.ledger_v2.reference import InMemoryLedger
from tests.ledger_v2_machine import Clock, LedgerMachine


class ReferenceMachine(LedgerMachine):
    def create_ledger(self, clock: Clock) -> tuple[Any, Callable[[], None]]:
        return InMemoryLedger(clock=clock), lambda: None


ReferenceMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestReferenceLedger = ReferenceMachine.TestCase
