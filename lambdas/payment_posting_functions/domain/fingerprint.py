"""The fingerprint of an authorization: what identifies it, independent of its transaction id.

An upstream retry writes the same authorization again under a new transaction id; the card
token, trace number (STAN), retrieval reference (RRN), terminal and amount stay the same. The
auth code alone is not enough: issuers reuse codes, and a retried request may get a new one.
Time is not hashed in; it is compared against a window (see ``domain.dedup``).

The message class is: a reversal carries its original's card, terminal and often its RRN,
and must never be taken for a repeat of it, while a reversal sent twice (a 0400, then its
0420 advice when no answer came) still is one. A clearing is told from its authorization
the same way.
"""

from __future__ import annotations

import hashlib

from payment_posting_functions.domain.digest import digest_text
from payment_posting_functions.domain.transaction import AuthorizedTransaction

# v2: the digest in lowercase base32. Hex digests hold long digit runs often enough (about one
# SHA-256 in 2,000) to look like a card number to the detector; base32 has only 2-7 as digits.
# v3: the message class hashed in. A first sighting fingerprinted v2 is not matched by a
# repeat fingerprinted v3: across the deploy that changes it, one window's repeats pass
# screening and are stopped by the ledger's idempotency (the same link id) instead.
FINGERPRINT_VERSION = "v3"


def fingerprint(transaction: AuthorizedTransaction) -> str:
    """A stable base32 digest of the identifying fields, prefixed with the scheme version."""
    parts = (
        FINGERPRINT_VERSION,
        transaction.message_class.value,
        transaction.pan_token,
        transaction.stan,
        transaction.rrn,
        transaction.terminal_id,
        str(transaction.transaction_amount.amount),
        transaction.transaction_amount.currency,
    )
    # A separator that cannot occur in any field keeps ("ab", "c") apart from ("a", "bc").
    digest = digest_text(hashlib.sha256("\x1f".join(parts).encode()).digest())
    return f"{FINGERPRINT_VERSION}:{digest}"
