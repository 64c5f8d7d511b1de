"""EventBridge event patterns, matched against the events a run put on the bus.

The subset the templates use: exact values, ``prefix``, ``exists``, ``anything-but`` and
``numeric``; another operator is an error rather than a silent miss.
"""

from __future__ import annotations

from typing import Any

from payment_cost.errors import CostInputError

_MISSING = object()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for field, wanted in pattern.items():
        value = event.get(field, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(wanted, dict):
            if value is _MISSING or not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if not _any_matches(wanted, value):
                return False
        else:
            raise CostInputError(f"event pattern field {field!r} is neither a list nor an object")
    return True


def _any_matches(options: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_matches_one(option, v) for option in options for v in values)


def _matches_one(option: Any, value: Any) -> bool:
    if not isinstance(option, dict):
        return value is not _MISSING and option == value
    ((operator, operand),) = option.items()
    if operator == "exists":
        return (value is not _MISSING) == bool(operand)
    if value is _MISSING:
        return False
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        return value not in excluded
    if operator == "numeric":
        return isinstance(value, int | float) and _numeric(operand, value)
    raise CostInputError(f"event pattern operator {operator!r} is not modelled")


def _numeric(conditions: list[Any], value: float) -> bool:
    checks = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](value, bound) for op, bound in pairs)
