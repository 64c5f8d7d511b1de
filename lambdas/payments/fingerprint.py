"""The fingerprint of an authorization: what identifies it, independent of its transaction id.

An upstream retry writes the same authorization again under a new transaction id; the card
token, trace number (STAN), retrieval reference (RRN), terminal and amount stay the same. The
auth code alone is not enough: issuers reuse codes, and a retried request may get a new one.
Time is not hashed in; it is compared against a window (see ``payments.dedup``).
"""

from __future__ import annotations

import hashlib

from payments.transaction import AuthorizedTransaction

FINGERPRINT_VERSION = "v1"


def fingerprint(transaction: AuthorizedTransaction) -> str:
    """A stable hex digest of the identifying fields, prefixed with the scheme version."""
    parts = (
        FINGERPRINT_VERSION,
        transaction.pan_token,
        transaction.stan,
        transaction.rrn,
        transaction.terminal_id,
        str(transaction.transaction_amount.amount),
        transaction.transaction_amount.currency,
    )
    # A separator that cannot occur in any field keeps ("ab", "c") apart from ("a", "bc").
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"{FINGERPRINT_VERSION}:{digest}"
