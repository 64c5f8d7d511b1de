"""House accounts (clearing and suspense, one of each per currency) and their shards.

Every posting has a house leg, so a house account kept as one balance item would be written
by every posting: its legs are spread over ``shards`` balance items (and entry partitions)
by a stable hash of the transfer id, so each item sees about 1/shards of the postings.
"""

from __future__ import annotations

import hashlib

CLEARING_PREFIX = "CLEARING-"
SUSPENSE_PREFIX = "SUSPENSE-"
DEFAULT_SHARDS = 64


def clearing_account(currency: str) -> str:
    """The clearing account of a currency: the scheme's side of card postings."""
    return CLEARING_PREFIX + currency


def suspense_account(currency: str) -> str:
    """Where a posting for an account that does not exist goes, per currency."""
    return SUSPENSE_PREFIX + currency


def is_house_account(account_id: str) -> bool:
    return account_id.startswith((CLEARING_PREFIX, SUSPENSE_PREFIX))


def house_currency(account_id: str) -> str:
    """The currency a house account's id names (``CLEARING-EUR`` -> ``EUR``)."""
    return account_id.split("-", 1)[1]


def shard_of(transfer_id: str, shards: int = DEFAULT_SHARDS) -> int:
    """Stable across processes and Python versions (``hash()`` is salted per process)."""
    digest = hashlib.blake2b(transfer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards
