"""Which house shard one writer (one Lambda execution environment) puts its house legs on.

Every posting writes one house shard's balance item in its transaction. Picked by a hash of
the transfer id, two of K concurrent writers meet on a shard with a probability that grows
as K/shards, and DynamoDB cancels one of two transactions that touch an item at once: the
conflicts per posting grow with K. A writer that holds a *lease* on a shard is, while it
holds it, the only writer of that shard: K writers on K distinct shards never conflict on a
house item, whatever K, as long as there are at least K shards.

A lease is an item of the balances table (``LEASE#HOUSE#<nnn>``) with an owner and an
expiry, claimed with a conditional UpdateItem (free, expired, or already ours) and renewed
when half its time has passed: one write per writer every ``lease_seconds / 2`` of activity,
on an item of its own. It is a hint for speed, never a lock that correctness needs: two
writers on one shard (a lease that expired while its holder was frozen, all shards taken,
a failed claim) conflict and retry as with hashing, and the sums stay exact, because house
balances are ``ADD``s whoever writes them. A writer without a lease falls back to the hash.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payment_posting_functions.domain.ledger_v2.house import shard_of

DEFAULT_LEASE_SECONDS = 60.0
# Shards tried per claim: enough to find a free one when most are taken, few enough that a
# claim when all are taken costs a handful of calls, not one per shard.
CLAIM_ATTEMPTS = 8
_LEASE_SK = "LEASE"


def lease_key(shard: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"LEASE#HOUSE#{shard:03d}"}, "sk": {"S": _LEASE_SK}}


class HouseShardLease:
    """``shard_for(transfer_id)``: the leased shard, or the transfer's hash shard without one.

    ``clock``: epoch seconds, the wall clock by default (leases are compared across
    processes; the ledger's own clock, which tests move, is not read here)."""

    def __init__(
        self,
        client: Any,
        table: str,
        shards: int,
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._client = client
        self._table = table
        self._shards = shards
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._rng = rng or random.Random()  # noqa: S311 (spreading writers, not a secret)
        self.owner = uuid.uuid4().hex
        self.shard: int | None = None
        self._until = 0.0
        self._next_claim = 0.0
        self.claims = 0  # conditional writes made to claim or renew (for the bench)

    def shard_for(self, transfer_id: str) -> int:
        now = self._clock()
        renew = self.shard is not None and now >= self._until - self._lease_seconds / 2
        if renew and self.shard is not None and not self._take(self.shard, now):
            self.shard = None  # another writer has it now: find another
        if self.shard is None and now >= self._next_claim:
            self.shard = self._claim(now)
            if self.shard is None:
                # All tried were taken: hash for a while rather than claim on every posting.
                self._next_claim = now + self._lease_seconds / 2
        return self.shard if self.shard is not None else shard_of(transfer_id, self._shards)

    def _claim(self, now: float) -> int | None:
        tries = self._rng.sample(range(self._shards), k=min(CLAIM_ATTEMPTS, self._shards))
        for shard in tries:
            if self._take(shard, now):
                return shard
        return None

    def _take(self, shard: int, now: float) -> bool:
        """Claim or renew ``shard``: free, expired, or ours already."""
        self.claims += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=lease_key(shard),
                UpdateExpression="SET #owner = :me, leaseUntil = :until",
                ConditionExpression="attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":me": {"S": self.owner},
                    ":until": {"N": repr(now + self._lease_seconds)},
                    ":now": {"N": repr(now)},
                },
            )
        except (ClientError, BotoCoreError):
            # Taken, or DynamoDB busy: either way this writer hashes; the posting goes on.
            return False
        self._until = now + self._lease_seconds
        return True
