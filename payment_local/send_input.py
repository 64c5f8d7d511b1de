"""The records of a JSON-lines file for ``payments-local send``, checked before any is written.

Everything that would make a write fail or lose a record is found here, for the whole file,
before the command touches the local state (``.payments-local``): a file with no records,
a line that is not UTF-8 or not a JSON object, an item without a transaction id, two lines
with the same transaction id (the transactions table keeps one item per id: a batch write
refuses two in one batch and a later one silently replaces an earlier one), and an item
DynamoDB would refuse (over its 400 KB item size, or a number it cannot store).

Messages name lines and fields, never values, and every id they quote has its card numbers
redacted: a file that fails these checks is the kind that may hold one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from payment_local.item_size import MAX_ITEM_BYTES, item_bytes, unstorable_values
from payment_local.pipeline_run import InputRecord, LabelledRecord
from payment_posting_functions.domain.generator import lifecycle_label
from payment_posting_functions.domain.pan import redact_card_numbers
from payment_posting_functions.domain.transaction_table import EXPIRES_AT

# The table adds a time-to-live attribute to an item that has none: its name and the
# largest number it can hold (an epoch second: 10 digits, 6 bytes) count towards the limit.
_EXPIRY_BYTES = len(EXPIRES_AT) + 6
# How many problems a message lists (it says how many there are in all).
SHOWN_PROBLEMS = 10
# The fields --with-kind wraps an item in; each is a string or null.
_LABELS = ("kind", "duplicateOf", "defect", "ruleBreak", "lifecycle", "fate", "follows")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
               type(None): "null", int: "a number", Decimal: "a number"}  # fmt: skip


class InputFileError(ValueError):
    """The file cannot be sent as it is; the message says each line and why."""


@dataclass(frozen=True)
class _Line:
    number: int
    record: LabelledRecord


def read_records(lines: Iterable[bytes], name: str) -> list[InputRecord]:
    """Every record of a JSON-lines file (raw bytes, one line each), or ``InputFileError``
    naming every line that cannot be sent (the first ``SHOWN_PROBLEMS``, and how many)."""
    problems: list[str] = []
    read: list[_Line] = []
    first_line_of: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            record = _record(raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw)
        except _LineError as error:
            problems.append(f"line {number}: {error}")
            continue
        if record is None:
            continue
        tx = record.transaction_id
        if tx in first_line_of:
            problems.append(
                f"line {number}: transaction id {_shown(tx)} is also on line "
                f"{first_line_of[tx]} (each transaction needs its own id: the table keeps "
                "one item per id)"
            )
            continue
        first_line_of[tx] = number
        read.append(_Line(number, record))
    if problems:
        listed = problems[:SHOWN_PROBLEMS]
        more = len(problems) - len(listed)
        raise InputFileError(
            f"{name}: {len(problems)} line{'s' if len(problems) > 1 else ''} cannot be sent, "
            "nothing was sent and the last run's state is unchanged:\n  "
            + "\n  ".join(listed)
            + (f"\n  ... and {more} more" if more else "")
        )
    if not read:
        raise InputFileError(
            f"{name} holds no transactions (it is empty or has only blank lines): nothing was "
            "sent and the last run's state is unchanged; `payments-local generate -n 20 "
            "-o transactions.jsonl` writes a file to try"
        )
    return [line.record for line in read]


class _LineError(Exception):
    pass


def _shown(text: str) -> str:
    return repr(redact_card_numbers(text))


def _refuse_constant(name: str) -> Any:
    raise _LineError(f"{name} is not a JSON number DynamoDB can store")


def _record(raw: bytes) -> LabelledRecord | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _LineError(
            f"is not UTF-8 (byte {error.start + 1} of the line); save the file as UTF-8"
        ) from None
    if not text.strip():
        return None
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise _LineError(f"is not JSON: {error.msg} (column {error.colno})") from None
    except ValueError as error:  # a number too long for Python to read
        raise _LineError(f"is not JSON this tool can read: {str(error).split(':')[0]}") from None
    if not isinstance(data, dict):
        raise _LineError(
            f"is {_JSON_TYPES.get(type(data), 'a value')}, not a JSON object (one transaction "
            "item per line, as `payments-local generate` writes)"
        )
    labelled = "item" in data and "kind" in data
    item = data["item"] if labelled else data
    if not isinstance(item, dict):
        raise _LineError(f"has an item that is {_JSON_TYPES.get(type(item), 'a value')}, "
                         "not a JSON object")  # fmt: skip
    tx = item.get("transactionId")
    if not isinstance(tx, str) or not tx:
        raise _LineError("has no transactionId (a non-empty string)")
    if labelled:
        odd = [key for key in _LABELS if not isinstance(data.get(key), str | None)]
        if odd:
            raise _LineError(f"has {', '.join(odd)} that should be a string or null "
                             "(the --with-kind labels)")  # fmt: skip
    unstorable = [f"{path} {why}" for path, why in unstorable_values(item)]
    if unstorable:
        raise _LineError(
            f"transaction {_shown(tx)}: " + "; ".join(redact_card_numbers(u) for u in unstorable)
        )
    size = item_bytes(item) + (0 if EXPIRES_AT in item else _EXPIRY_BYTES)
    if size > MAX_ITEM_BYTES:
        raise _LineError(
            f"transaction {_shown(tx)} is {size:,} bytes as DynamoDB counts an item, over "
            f"its limit of {MAX_ITEM_BYTES:,} bytes (400 KB)"
        )
    return LabelledRecord(
        item=item,
        kind_label=data["kind"] if labelled else None,
        duplicate_of=data.get("duplicateOf") if labelled else None,
        planted=(data.get("defect") or data.get("ruleBreak")) if labelled else None,
        lifecycle_label=(
            lifecycle_label(data["lifecycle"], data.get("fate"))
            if labelled and isinstance(data.get("lifecycle"), str)
            else None
        ),
        follows=data.get("follows") if labelled else None,
    )
