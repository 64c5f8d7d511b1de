"""House accounts (clearing and suspense, one of each per currency) and their shards.

Every posting has a house leg, so a house account kept as one balance item would be written
by every posting: its legs are spread over ``shards`` balance items. A writer puts its house
legs on a shard it leases (``house_lease``), or, without a lease, on the shard of a stable
hash of the transfer id; entries go to the journal partition of the hash shard.
"""

from __future__ import annotations

import hashlib

CLEARING_PREFIX = "CLEARING-"
SUSPENSE_PREFIX = "SUSPENSE-"
# At least one shard per concurrent writer, so that every writer can lease one: the poster's
# default max_concurrency (100) and the expiry sweeper, with room for execution environments
# Lambda replaces while their leases run out.
DEFAULT_SHARDS = 128


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
