"""The fingerprint store on DynamoDB: ``payments.dedup`` rules as conditional writes.

One item per fingerprint: ``ownerId``/``ownerAtMs`` (the first sighting), ``verdicts`` (duplicates
already judged, so a re-run repeats them) and ``expiresAt`` for TTL. TTL deletes late (up to
days), so the window is enforced by the condition, never by TTL; TTL only keeps the table small.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from payments.dedup import FIRST_SIGHTING, FingerprintEntry, Sighting, Verdict, judge

# Keep an entry well past its window so a batch re-run (bounded by the pipe's maximum record
# age) still finds the verdicts it needs to repeat.
RETENTION_SLACK_MS = 24 * 60 * 60 * 1000

_CLAIM_CONDITION = (
    "attribute_not_exists(ownerId) OR ownerId = :id"
    " OR (attribute_not_exists(verdicts.#id) AND (ownerAtMs < :lo OR ownerAtMs > :hi))"
)
_deserialize = TypeDeserializer().deserialize


class DynamoDBFingerprintStore:
    """Judges and records a sighting in at most two writes (the second only for a duplicate)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def screen(self, fingerprint: str, candidate: Sighting, window_ms: int) -> Verdict:
        at = candidate.transmitted_at_ms
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"fingerprint": {"S": fingerprint}},
                UpdateExpression=(
                    "SET ownerId = :id, ownerAtMs = :at, expiresAt = :exp,"
                    " verdicts = if_not_exists(verdicts, :none)"
                ),
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeNames={"#id": candidate.transaction_id},
                ExpressionAttributeValues={
                    ":id": {"S": candidate.transaction_id},
                    ":at": {"N": str(at)},
                    ":lo": {"N": str(at - window_ms)},
                    ":hi": {"N": str(at + window_ms)},
                    ":exp": {"N": str((at + window_ms + RETENTION_SLACK_MS) // 1000)},
                    ":none": {"M": {}},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return FIRST_SIGHTING
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            entry = _entry(error.response.get("Item"))
        verdict = judge(entry, candidate, window_ms)
        if verdict.duplicate_of is not None and candidate.transaction_id not in entry.verdicts:
            self._remember(fingerprint, candidate.transaction_id, verdict.duplicate_of)
        return verdict

    def _remember(self, fingerprint: str, transaction_id: str, first_id: str) -> None:
        self._client.update_item(
            TableName=self._table_name,
            Key={"fingerprint": {"S": fingerprint}},
            UpdateExpression="SET verdicts.#id = :first",
            ConditionExpression="attribute_exists(verdicts)",
            ExpressionAttributeNames={"#id": transaction_id},
            ExpressionAttributeValues={":first": {"S": first_id}},
        )


def _entry(item: dict[str, Any] | None) -> FingerprintEntry:
    if not item:
        # The condition only fails against an existing item; no item means the service did not
        # return it, and guessing a verdict could drop a payment, so fail and let Pipes retry.
        raise RuntimeError("conditional check failed but DynamoDB returned no item")
    plain = {name: _deserialize(value) for name, value in item.items()}
    return FingerprintEntry(
        owner=Sighting(plain["ownerId"], int(plain["ownerAtMs"])),
        verdicts={str(k): str(v) for k, v in plain.get("verdicts", {}).items()},
    )
