"""The posting function's idempotency records, with their digests written in base32.

Powertools keys each record by a hex MD5 of the transaction id and keeps a hex MD5 of the
posting's content to tell a repeat from a conflict; ``domain.digest`` says why stored digests
are not written in hex. The key only has to be the same for the same input, so writing it
another way changes nothing else (records written before the change are not found, and their
transactions are held to the ledger's own idempotency by transfer id instead).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from payment_posting_functions.domain.digest import hex_digest_text


class IdempotencyStore(DynamoDBPersistenceLayer):
    """``DynamoDBPersistenceLayer`` whose key and validation digests are base32."""

    def _generate_hash(self, data: Any) -> str:
        return hex_digest_text(super()._generate_hash(data))
