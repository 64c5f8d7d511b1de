"""The fingerprint store on DynamoDB: ``domain.dedup`` rules as conditional writes.

One item per fingerprint: ``ownerId``/``ownerAtMs`` (the sighting that owns it), one attribute
``seen:<transaction id>`` per verdict given (``FIRST`` or the id it duplicates), so a re-run
repeats it, and ``expiresAt`` for TTL. TTL deletes late (up to days), so the window is
enforced by the condition, never by TTL; TTL only keeps the table small.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from payment_posting_functions.domain.dedup import (
    FIRST_SIGHTING,
    FingerprintEntry,
    Sighting,
    Verdict,
    judge,
)

# Keep an entry well past its window so a batch re-run (bounded by the pipe's maximum record
# age) still finds the verdicts it needs to repeat.
RETENTION_SLACK_MS = 24 * 60 * 60 * 1000
SEEN_PREFIX = "seen:"
# Transaction ids are at least 8 characters, so this marker cannot be mistaken for one.
FIRST_MARKER = "FIRST"

_CLAIM_UPDATE = "SET ownerId = :id, ownerAtMs = :at, expiresAt = :exp, #seen = :first"
# Take over only if the item is as judged: this transaction has no verdict yet and the owner
# is still outside its window (or the item expired and is gone).
_TAKE_OVER_CONDITION = (
    "attribute_not_exists(ownerId)"
    " OR (attribute_not_exists(#seen) AND (ownerAtMs < :lo OR ownerAtMs > :hi))"
)


class DynamoDBFingerprintStore:
    """Judges and records a sighting: one conditional write for a first sighting (the common
    case), one more to remember a duplicate or to take an expired fingerprint over."""

    def __init__(self, client: Any, table_name: str, max_contention_retries: int = 3) -> None:
        """``client`` is a boto3 DynamoDB client."""
        self._client = client
        self._table_name = table_name
        self._max_contention_retries = max_contention_retries

    def screen(self, fingerprint: str, candidate: Sighting, window_ms: int) -> Verdict:
        key = {"fingerprint": {"S": fingerprint}}
        seen = {"#seen": SEEN_PREFIX + candidate.transaction_id}
        claim_values = {
            ":id": {"S": candidate.transaction_id},
            ":at": {"N": str(candidate.transmitted_at_ms)},
            ":exp": {"N": str(_expires_at(candidate, window_ms))},
            ":first": {"S": FIRST_MARKER},
        }
        # A fingerprint nobody has seen: a plain conditional put, the cheapest write.
        item = self._conditional(
            "put_item",
            Item={
                **key,
                "ownerId": claim_values[":id"],
                "ownerAtMs": claim_values[":at"],
                "expiresAt": claim_values[":exp"],
                SEEN_PREFIX + candidate.transaction_id: claim_values[":first"],
            },
            ConditionExpression="attribute_not_exists(fingerprint)",
        )
        for _ in range(self._max_contention_retries):
            if item is None:
                return FIRST_SIGHTING
            entry = _entry(item)
            verdict = judge(entry, candidate, window_ms)
            if candidate.transaction_id in entry.verdicts:
                return verdict  # judged before: a re-run
            if verdict.duplicate_of is not None:
                self._client.update_item(
                    TableName=self._table_name,
                    Key=key,
                    UpdateExpression="SET #seen = :verdict",
                    ExpressionAttributeNames=seen,
                    ExpressionAttributeValues={":verdict": {"S": _encode(verdict)}},
                )
                return verdict
            # Outside the owner's window: take the fingerprint over, unless it changed since
            # it was read (then judge again from what the failed condition returns).
            item = self._conditional(
                "update_item",
                Key=key,
                UpdateExpression=_CLAIM_UPDATE,
                ConditionExpression=_TAKE_OVER_CONDITION,
                ExpressionAttributeNames=seen,
                ExpressionAttributeValues={
                    **claim_values,
                    ":lo": {"N": str(candidate.transmitted_at_ms - window_ms)},
                    ":hi": {"N": str(candidate.transmitted_at_ms + window_ms)},
                },
            )
        raise RuntimeError(f"fingerprint {fingerprint} kept changing; the batch will be retried")

    def _conditional(self, operation: str, **request: Any) -> dict[str, Any] | None:
        """Run a conditional write; None if it succeeded, else the item that failed it."""
        try:
            getattr(self._client, operation)(
                TableName=self._table_name, ReturnValuesOnConditionCheckFailure="ALL_OLD", **request
            )
            return None
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            item: dict[str, Any] | None = error.response.get("Item")
            if not item:
                # The condition only fails against an existing item; without it a verdict
                # would be a guess that could drop a payment, so fail and let Pipes retry.
                raise RuntimeError(
                    "conditional check failed but DynamoDB returned no item"
                ) from None
            return item


def _expires_at(candidate: Sighting, window_ms: int) -> int:
    return (candidate.transmitted_at_ms + window_ms + RETENTION_SLACK_MS) // 1000


def _encode(verdict: Verdict) -> str:
    return verdict.duplicate_of or FIRST_MARKER


def _decode(value: str) -> Verdict:
    return FIRST_SIGHTING if value == FIRST_MARKER else Verdict(value)


def _entry(item: dict[str, Any]) -> FingerprintEntry:
    return FingerprintEntry(
        owner=Sighting(item["ownerId"]["S"], int(item["ownerAtMs"]["N"])),
        verdicts={
            name.removeprefix(SEEN_PREFIX): _decode(value["S"])
            for name, value in item.items()
            if name.startswith(SEEN_PREFIX)
        },
    )
