"""Each path of the card and ATM lifecycle, end to end on the local stack with access checks.

Records are written to the transactions table as the authorization system (and, for
clearings, the scheme's presentment file) would write them; each goes through screening,
enrichment, the business rules and the posting function, as its own role, and the test
reads the lifecycle events and the cardholder's balance in the ledger. Later messages are
written after their original has finished, as the schemes send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from payment_local.assembly import StackAssembly
from payment_local.event_log import LoggedEvent
from payment_local.ledger_view import ledger_of
from payment_local.pipeline_run import LabelledRecord, run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.event_names import EventName
from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger
from payment_posting_functions.domain.ledger_v2.model import PendingStatus
from payment_posting_functions.domain.ledger_v2.sample_accounts import open_sample_accounts
from tests.factories import valid_item

pytestmark = pytest.mark.slow

SENT = "2026-11-24T10:15:30.250000+00:00"
_cards = count(1)


@pytest.fixture(scope="module")
def lifecycle_runtime(
    assembly: StackAssembly, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRuntime]:
    # One stack for the module: each test has its own cards and its own account.
    log = tmp_path_factory.mktemp("lifecycle") / "functions.log"
    with log.open("w") as sink, LocalRuntime(assembly, function_log=sink) as running:
        yield running
        assert running.access.denials() == []


@pytest.fixture
def ledger(lifecycle_runtime: LocalRuntime) -> DynamoDBLedger:
    found = ledger_of(lifecycle_runtime)
    assert found is not None
    open_sample_accounts(found)  # as each run does; opened already, it changes nothing
    return found


class Card:
    """One card transaction's messages: the same token, RRN and auth code throughout."""

    def __init__(self, account: str) -> None:
        self.number = next(_cards)
        self.account = account
        self.rrn = f"{self.number:012d}"
        self.auth = f"AC{self.number:04d}"
        self._stan = count(self.number * 100)

    def message(self, tid: str, mti: str, amount: int, code: str = "000000",
                **fields: Any) -> dict[str, Any]:  # fmt: skip
        money = {"amount": amount, "currency": "EUR"}
        fields.setdefault("stan", f"{next(self._stan):06d}")
        return valid_item(
            transactionId=f"{tid}-{self.number:04d}", mti=mti, processingCode=code,
            panToken=f"tok_lifecycle_card_{self.number:06d}", rrn=self.rrn, authCode=self.auth,
            transactionAmount=money, billingAmount=money,
            conversionRate="1.00000000", acquirerCountry="DE", accountId=self.account,
            **fields,
        )  # fmt: skip

    def original(self, mti: str) -> dict[str, Any]:
        return {"mti": mti, "stan": f"{self.number * 100:06d}", "transmittedAt": SENT,
                "rrn": self.rrn, "authCode": self.auth}  # fmt: skip

    def reversal(self, tid: str, mti: str, amount: int, original_mti: str,
                 code: str = "000000") -> dict[str, Any]:  # fmt: skip
        # Its own RRN and auth code; the original's in its original data elements.
        item = self.message(tid, mti, amount, code, original=self.original(original_mti))
        item.update(rrn=f"9{self.rrn[1:]}", authCode=f"RV{self.number:04d}")
        return item


def send(runtime: LocalRuntime, *items: dict[str, Any]) -> list[LoggedEvent]:
    """Write the items, run until each has its final event; that event of each, in order."""
    # Time stands still here: the test moves it when a hold should expire.
    records = [LabelledRecord(item) for item in items]
    result = run_transactions(runtime, records, expire_holds=False, decide_reviews=False)
    assert sorted(result.written_at) == sorted(i["transactionId"] for i in items)
    finals = []
    for item in items:
        events = runtime.event_log.by_transaction[item["transactionId"]]
        terminal = [e for e in events if _terminal(e)]
        assert len(terminal) == 1, [e.detail_type for e in events]
        finals.append(terminal[0])
    return finals


def _terminal(event: LoggedEvent) -> bool:
    from payment_posting_functions.domain.events import BY_NAME

    model = BY_NAME.get(event.detail_type)
    return model is not None and model.TERMINAL


def balance(ledger: DynamoDBLedger, account: str) -> tuple[int, int, int]:
    b = ledger.balance(account)
    return b.posted, b.pending_debits, b.available


def test_a_dual_message_purchase_holds_then_its_clearing_posts_the_final_amount(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0001")
    before = balance(ledger, card.account)
    [held] = send(lifecycle_runtime, card.message("tx-auth", "0100", 4_000, mcc="5812"))
    assert held.detail_type == EventName.AUTHORIZATION_HELD
    assert (held.detail["amount"]["amount"], held.detail["holdSeconds"]) == (4_000, 7 * 86_400)
    assert balance(ledger, card.account) == (before[0], before[1] + 4_000, before[2] - 4_000)

    # The restaurant's tip: cleared at 4,600, within the tolerance.
    [cleared] = send(lifecycle_runtime, card.message("tx-clear", "1240", 4_600, mcc="5812"))
    assert cleared.detail_type == EventName.CLEARING_MATCHED
    assert (cleared.detail["pendingId"], cleared.detail["excess"]) == (held.transaction_id, 600)
    assert balance(ledger, card.account) == (before[0] - 4_600, before[1], before[2] - 4_600)
    pending = ledger.pending(str(held.transaction_id))
    assert pending is not None
    assert pending.status is PendingStatus.POSTED


def test_split_shipments_clear_one_authorization_in_parts(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0002")
    before = balance(ledger, card.account)
    send(lifecycle_runtime, card.message("tx-auth", "0100", 9_000))
    [first] = send(lifecycle_runtime, card.message("tx-ship1", "1240", 3_000, finalClearing=False))
    assert (first.detail_type, first.detail["final"]) == (EventName.CLEARING_MATCHED, False)
    assert balance(ledger, card.account)[1] == before[1] + 6_000
    [last] = send(lifecycle_runtime, card.message("tx-ship2", "1240", 2_500))
    assert (last.detail_type, last.detail["final"]) == (EventName.CLEARING_MATCHED, True)
    assert balance(ledger, card.account) == (before[0] - 5_500, before[1], before[2] - 5_500)


def test_an_atm_withdrawal_posts_at_once_and_a_partial_reversal_corrects_it(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0003")
    before = balance(ledger, card.account)
    atm = card.message("tx-atm", "0200", 20_000, code="011000", mcc="6011")
    [posted] = send(lifecycle_runtime, atm)
    assert posted.detail_type == EventName.TRANSACTION_POSTED
    assert posted.detail["messageClass"] == "FINANCIAL"
    # Dispensed 150.00 of 200.00.
    reversal = card.reversal("tx-rev", "0400", 5_000, "0200", code="011000")
    [reversed_] = send(lifecycle_runtime, reversal)
    assert reversed_.detail_type == EventName.REVERSAL_APPLIED
    assert (reversed_.detail["appliedAs"], reversed_.detail["partial"]) == ("CORRECTION", True)
    assert reversed_.detail["originalId"] == atm["transactionId"]
    assert balance(ledger, card.account)[0] == before[0] - 15_000


def test_a_reversed_authorization_releases_its_hold_and_a_retransmitted_reversal_is_a_duplicate(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0004")
    before = balance(ledger, card.account)
    auth = card.message("tx-auth", "0100", 7_000)
    send(lifecycle_runtime, auth)
    # Many acquirers send the reversal with the original's own trace number and RRN: still
    # not a duplicate of it (another message class).
    reversal = card.message("tx-rev", "0400", 7_000, original=card.original("0100"),
                            stan=auth["stan"])  # fmt: skip
    [voided] = send(lifecycle_runtime, reversal)
    assert voided.detail_type == EventName.REVERSAL_APPLIED
    assert (voided.detail["appliedAs"], voided.detail["partial"]) == ("VOID", False)
    assert balance(ledger, card.account) == before
    # The acquirer got no answer and sent it again as an advice: a repeat, flagged.
    advice = {**reversal, "mti": "0420", "transactionId": f"tx-rev-again-{card.number:04d}"}
    [repeat] = send(lifecycle_runtime, advice)
    assert repeat.detail_type == EventName.DUPLICATE_FLAGGED
    assert repeat.detail["duplicateOf"] == reversal["transactionId"]
    assert balance(ledger, card.account) == before


def test_a_refund_credits_the_cardholder_linked_to_its_purchase(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0005")
    before = balance(ledger, card.account)
    purchase = card.message("tx-buy", "0200", 3_000)
    send(lifecycle_runtime, purchase)
    refund = card.reversal("tx-refund", "0200", 3_000, "0200", code="200000")
    [credited] = send(lifecycle_runtime, refund)
    assert credited.detail_type == EventName.TRANSACTION_POSTED
    assert (credited.detail["direction"], credited.detail["originalId"]) == (
        "CREDIT", purchase["transactionId"],
    )  # fmt: skip
    assert balance(ledger, card.account) == before


def test_a_clearing_without_its_authorization_is_posted_forced_after_waiting(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0006")
    before = balance(ledger, card.account)
    [posted] = send(lifecycle_runtime, card.message("tx-clear", "1240", 1_234))
    assert posted.detail_type == EventName.TRANSACTION_POSTED
    assert "without a matching authorization" in posted.detail["forcedReason"]
    assert balance(ledger, card.account)[0] == before[0] - 1_234
    # It went back to the queue while it waited, and never reached the dead-letter queue.
    poster = next(f for lid, f in lifecycle_runtime.topology.functions.items() if "Poster" in lid)
    assert poster.invocations >= 2


def test_an_authorization_never_cleared_expires_and_is_released(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0007")
    before = balance(ledger, card.account)
    [held] = send(lifecycle_runtime, card.message("tx-auth", "0100", 2_500))
    assert balance(ledger, card.account)[1] == before[1] + 2_500
    lifecycle_runtime.advance_time(7 * 86_400 + 120)
    lifecycle_runtime.run_until_idle()
    [expired] = [
        e for e in lifecycle_runtime.event_log.by_transaction[str(held.transaction_id)]
        if e.detail_type == EventName.HOLD_EXPIRED
    ]  # fmt: skip
    assert expired.detail["released"] == {"amount": 2_500, "currency": "EUR"}
    assert balance(ledger, card.account) == before
    assert ledger.trial_balance("EUR").posted == 0


def test_a_completion_advice_clears_its_pre_authorization(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0008")
    before = balance(ledger, card.account)
    [held] = send(lifecycle_runtime, card.message("tx-preauth", "0100", 10_000, mcc="5542"))
    # The fuel pump's completion, as a single-message network sends it: a 0220 advice.
    [completed] = send(lifecycle_runtime, card.message("tx-done", "0220", 6_789, mcc="5542"))
    assert completed.detail_type == EventName.CLEARING_MATCHED
    assert completed.detail["pendingId"] == held.transaction_id
    assert balance(ledger, card.account) == (before[0] - 6_789, before[1], before[2] - 6_789)


def test_an_inquiry_completes_and_moves_no_money(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0009")
    before = balance(ledger, card.account)
    inquiry = card.message("tx-balance", "0200", 0, code="310000", mcc="6011")
    [completed] = send(lifecycle_runtime, inquiry)
    assert completed.detail_type == EventName.INQUIRY_COMPLETED
    assert balance(ledger, card.account) == before


def test_a_billing_currency_other_than_the_accounts_is_rejected_by_the_rules(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger
) -> None:
    card = Card("ACC-0011")
    before = balance(ledger, card.account)
    yen = {"amount": 50_000, "currency": "JPY"}
    item = card.message("tx-yen", "0200", 0)
    item.update(transactionAmount=yen, billingAmount=yen)  # billed in yen, to a euro account
    [rejected] = send(lifecycle_runtime, item)
    assert rejected.detail_type == EventName.TRANSACTION_REJECTED
    assert rejected.detail["reasonCode"] == "CURRENCY_MISMATCH"
    assert balance(ledger, card.account) == before


def test_nothing_was_refused_and_the_ledger_is_balanced(
    lifecycle_runtime: LocalRuntime, ledger: DynamoDBLedger, tmp_path: Path
) -> None:
    trial = ledger.trial_balance("EUR")
    assert trial.posted == 0
    assert trial.pending_debits == trial.pending_credits
    assert lifecycle_runtime.access.denials() == []
