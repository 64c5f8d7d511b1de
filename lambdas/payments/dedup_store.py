"""The fingerprint store on DynamoDB: ``payments.dedup`` rules as conditional writes.

One item per fingerprint: ``ownerId``/``ownerAtMs`` (the sighting that owns it), one attribute
``seen:<transaction id>`` per verdict given (``FIRST`` or the id it duplicates), so a re-run
repeats it, and ``expiresAt`` for TTL. TTL deletes late (up to days), so the window is
enforced by the condition, never by TTL; TTL only keeps the table small.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from payments.dedup import FIRST_SIGHTING, FingerprintEntry, Sighting, Verdict, judge

# Keep an entry well past its window so a batch re-run (bounded by the pipe's maximum record
# age) still finds the verdicts it needs to repeat.
RETENTION_SLACK_MS = 24 * 60 * 60 * 1000
SEEN_PREFIX = "seen:"
# Transaction ids are at least 8 characters, so this marker cannot be mistaken for one.
FIRST_MARKER = "FIRST"

_CLAIM_UPDATE = "SET ownerId = :id, ownerAtMs = :at, expiresAt = :exp, #seen = :first"
# Claim when nobody owns the fingerprint, or when this transaction has no verdict yet and
# the owner is outside its window; otherwise fail and return the item, to judge from it.
_CLAIM_CONDITION = (
    "attribute_not_exists(ownerId)"
    " OR (attribute_not_exists(#seen) AND (ownerAtMs < :lo OR ownerAtMs > :hi))"
)


class DynamoDBFingerprintStore:
    """Judges and records a sighting in one conditional write, plus one for a duplicate."""

    def __init__(self, client: Any, table_name: str) -> None:
        """``client`` is a boto3 DynamoDB client."""
        self._client = client
        self._table_name = table_name

    def screen(self, fingerprint: str, candidate: Sighting, window_ms: int) -> Verdict:
        at = candidate.transmitted_at_ms
        seen = {"#seen": SEEN_PREFIX + candidate.transaction_id}
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"fingerprint": {"S": fingerprint}},
                UpdateExpression=_CLAIM_UPDATE,
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeNames=seen,
                ExpressionAttributeValues={
                    ":id": {"S": candidate.transaction_id},
                    ":at": {"N": str(at)},
                    ":lo": {"N": str(at - window_ms)},
                    ":hi": {"N": str(at + window_ms)},
                    ":exp": {"N": str((at + window_ms + RETENTION_SLACK_MS) // 1000)},
                    ":first": {"S": FIRST_MARKER},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return FIRST_SIGHTING
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            entry = _entry(error.response.get("Item"))
        verdict = judge(entry, candidate, window_ms)
        if candidate.transaction_id not in entry.verdicts:
            # A duplicate (the condition failed within the window): remember it for re-runs.
            self._client.update_item(
                TableName=self._table_name,
                Key={"fingerprint": {"S": fingerprint}},
                UpdateExpression="SET #seen = :verdict",
                ExpressionAttributeNames=seen,
                ExpressionAttributeValues={":verdict": {"S": _encode(verdict)}},
            )
        return verdict


def _encode(verdict: Verdict) -> str:
    return verdict.duplicate_of or FIRST_MARKER


def _decode(value: str) -> Verdict:
    return FIRST_SIGHTING if value == FIRST_MARKER else Verdict(value)


def _entry(item: dict[str, Any] | None) -> FingerprintEntry:
    if not item:
        # The condition only fails against an existing item; no item means the service did not
        # return it, and guessing a verdict could drop a payment, so fail and let Pipes retry.
        raise RuntimeError("conditional check failed but DynamoDB returned no item")
    return FingerprintEntry(
        owner=Sighting(item["ownerId"]["S"], int(item["ownerAtMs"]["N"])),
        verdicts={
            name.removeprefix(SEEN_PREFIX): _decode(value["S"])
            for name, value in item.items()
            if name.startswith(SEEN_PREFIX)
        },
    )
