"""What DynamoDB would say about an item before it is written: its size and its numbers.

``send`` checks every record of a file with these before anything is written, so a record
DynamoDB would refuse is named by its line instead of failing the run half way (a batch
write refused by the service, after other items were written and the last run's state was
replaced).

The size follows DynamoDB's published rules ("Item sizes and formats" in the developer
guide), rounded up wherever they say "approximately", so the estimate is never below what
DynamoDB counts:

- an attribute costs its name's UTF-8 bytes plus its value's size;
- a string: its UTF-8 bytes; a binary: its bytes; a boolean or null: 1 byte;
- a number: 1 byte per two significant digits (leading and trailing zeros trimmed), plus 1
  byte, plus 1 more for a negative number (the guide's "approximately" leaves the sign's
  cost open; counting it keeps the estimate on the safe side);
- a list or map: 3 bytes, plus per element 1 byte and its size (a map's element: its name's
  bytes too).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# DynamoDB's item size limit: 400 KB, counted in binary kilobytes (names and values).
MAX_ITEM_BYTES = 400 * 1024
# Numbers: at most 38 significant digits, magnitude from 1E-130 up to below 1E+126.
MAX_SIGNIFICANT_DIGITS = 38
SMALLEST_EXPONENT = -130
LARGEST_EXPONENT = 125
# Documents nest at most 32 levels deep.
MAX_DEPTH = 32
_CONTAINER_OVERHEAD = 3
_ELEMENT_OVERHEAD = 1


def _significant(value: int | Decimal) -> str:
    """The number's digits with leading and trailing zeros trimmed ("0" for zero)."""
    # as_tuple, not abs(): arithmetic would round to the context's 28 digits.
    digits = "".join(str(d) for d in Decimal(value).as_tuple().digits).strip("0")
    return digits or "0"


def value_bytes(value: Any) -> int:
    """The size DynamoDB counts for one attribute value (without its name)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, int | Decimal):
        return math.ceil(len(_significant(value)) / 2) + 1 + (1 if value < 0 else 0)
    if isinstance(value, Mapping):
        return _CONTAINER_OVERHEAD + sum(
            len(str(name).encode("utf-8")) + value_bytes(item) + _ELEMENT_OVERHEAD
            for name, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return _CONTAINER_OVERHEAD + sum(value_bytes(item) + _ELEMENT_OVERHEAD for item in value)
    raise TypeError(f"DynamoDB holds no {type(value).__name__} value")


def item_bytes(item: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for an item: each attribute's name and value."""
    return sum(len(name.encode("utf-8")) + value_bytes(value) for name, value in item.items())


def unstorable_values(item: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(path, why)`` of each value DynamoDB cannot store: a number with more than 38
    significant digits or out of its range, a float (not exact: JSON lines are read with
    decimals), a document nested deeper than 32 levels. Paths name fields, never values."""
    yield from _unstorable(item, "", 0)


def _unstorable(value: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        if depth > MAX_DEPTH:
            yield path, f"nests deeper than DynamoDB's {MAX_DEPTH} levels"
            return
        for name, item in value.items():
            yield from _unstorable(item, f"{path}.{name}" if path else str(name), depth + 1)
    elif isinstance(value, list):
        if depth > MAX_DEPTH:
            yield path, f"nests deeper than DynamoDB's {MAX_DEPTH} levels"
            return
        for index, item in enumerate(value):
            yield from _unstorable(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, float):
        yield path, "is a float, which DynamoDB cannot store exactly"
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        why = _number_problem(value)
        if why:
            yield path, why


def _number_problem(value: int | Decimal) -> str | None:
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):  # pragma: no cover - JSON numbers always convert
        return "is not a number DynamoDB can store"
    if not number.is_finite():
        return "is not a finite number"
    if number == 0:
        return None
    digits = _significant(number)
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        return f"has more than DynamoDB's {MAX_SIGNIFICANT_DIGITS} significant digits"
    if number.adjusted() > LARGEST_EXPONENT or number.adjusted() < SMALLEST_EXPONENT:
        return "is outside the range of DynamoDB numbers (1E-130 to 1E+126)"
    return None
