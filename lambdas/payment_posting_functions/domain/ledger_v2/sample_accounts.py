"""The sample directory's accounts opened in ledger v2, as the sample source does in a dev
stage and the local run does before it posts.

Ledger v2 creates no customer account on first touch (a typo must not become an account), so
a stack that generates sample transactions opens their accounts first, each in its currency
with a credit limit the generator's amounts stay within. The house accounts (clearing and
suspense) need no opening: the ledger opens them on first use.
"""

from __future__ import annotations

from typing import Protocol

from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.ledger_v2.model import Account

# One million in major units: the generator's largest purchase is a few thousand, so no
# sample posting meets the limit, while a limit is still set (v2 refuses a debit beyond it).
SAMPLE_CREDIT_LIMIT_MINOR = 100_000_000


class AccountOpener(Protocol):
    def open_account(self, account_id: str, currency: str, *, credit_limit: int = 0) -> Account: ...


def open_sample_accounts(ledger: AccountOpener) -> int:
    """Open every account of the sample directory (again: no change). Returns how many."""
    accounts = sample_accounts()
    for account in accounts:
        ledger.open_account(
            account.account_id, account.currency, credit_limit=SAMPLE_CREDIT_LIMIT_MINOR
        )
    return len(accounts)
