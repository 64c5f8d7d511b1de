"""Is every transaction accounted for? Over everything a local state has seen.

What ``payments-local check`` prints after a run, a redrive or a replay: each transaction
written in exactly one final state (or waiting, and where), no transfer posted twice, and a
trial balance of zero per currency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from payment_local.pipeline_run import held_for_review, is_terminal
from payment_local.report import final_state


@dataclass
class Accounting:
    written: int = 0
    final_states: Counter[str] = field(default_factory=Counter)
    no_final_state: list[str] = field(default_factory=list)
    waiting_for_review: int = 0
    transfers: int = 0
    posted_twice: list[str] = field(default_factory=list)
    trial_balance: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        problems = []
        if self.no_final_state:
            problems.append(
                f"{len(self.no_final_state)} transactions have no final state "
                f"(e.g. {', '.join(self.no_final_state[:3])}): look in the dead-letter "
                "queues (`status`) and redrive them"
            )
        if self.posted_twice:
            problems.append(
                f"{len(self.posted_twice)} transfers were posted more than once "
                f"(e.g. {', '.join(self.posted_twice[:3])})"
            )
        unbalanced = [c for c, total in self.trial_balance.items() if total]
        if unbalanced:
            problems.append(f"the trial balance is not zero in {', '.join(unbalanced)}")
        return problems

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "finalStates": dict(sorted(self.final_states.items())),
            "noFinalState": self.no_final_state,
            "waitingForReview": self.waiting_for_review,
            "transfers": self.transfers,
            "postedTwice": self.posted_twice,
            "trialBalance": self.trial_balance,
            "problems": self.problems,
        }


def account(
    written: list[str], by_transaction: dict[str, list[Any]], ledger: dict[str, Any] | None
) -> Accounting:
    result = Accounting(written=len(written))
    for tx in dict.fromkeys(written):
        events = by_transaction.get(tx, [])
        if any(is_terminal(event) for event in events):
            result.final_states[final_state(events)] += 1
            result.waiting_for_review += held_for_review(events)
        else:
            result.no_final_state.append(tx)
    if ledger is not None:
        legs = Counter(str(entry["transactionId"]) for entry in ledger.get("entries", []))
        result.transfers = len(legs)
        # A transfer is two legs; more means the same transfer id was posted again.
        result.posted_twice = sorted(transfer for transfer, n in legs.items() if n > 2)
        totals: Counter[str] = Counter()
        for row in ledger.get("balances", []):
            totals[str(row["currency"])] += int(row["posted"])
        result.trial_balance = dict(sorted(totals.items()))
    return result
