"""Condition blocks of IAM policies: the operators, and the keys the local check knows.

A key the local check cannot fill in is evaluated to the most restrictive outcome: an Allow
that needs it does not apply, a Deny that needs it does. ``KNOWN_KEYS`` lists what the
authorizer puts in a request's context; anything else in a template is reported at start.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping

# Condition keys the local check sets when they apply to a request (lower-case).
KNOWN_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:securetransport",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:principalservicename",
        "aws:requestedregion",
        "events:source",
        "events:detail-type",
        "kms:viaservice",
        "kms:calleraccount",
        "kms:encryptioncontextkeys",
    }
)
# Families of keys whose suffix is a name of the caller's choosing.
KNOWN_PREFIXES = ("kms:encryptioncontext:",)


def is_known_key(key: str) -> bool:
    key = key.lower()
    return key in KNOWN_KEYS or key.startswith(KNOWN_PREFIXES)


def _like(pattern: str, value: str, fold: bool = False) -> bool:
    pattern, value = (pattern.lower(), value.lower()) if fold else (pattern, value)
    # IAM's "Like" wildcards are * and ?; a "[" is literal, so escape it for fnmatch.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def test(policy: str, value: str) -> bool:
        a, b = _number(value), _number(policy)
        return a is not None and b is not None and compare(a, b)

    return test


# operator -> (test of one request value against one policy value, negated?)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (lambda p, v: p == v, False),
    "stringnotequals": (lambda p, v: p == v, True),
    "stringequalsignorecase": (lambda p, v: p.lower() == v.lower(), False),
    "stringnotequalsignorecase": (lambda p, v: p.lower() == v.lower(), True),
    "stringlike": (lambda p, v: _like(p, v), False),
    "stringnotlike": (lambda p, v: _like(p, v), True),
    "arnequals": (lambda p, v: _like(p, v), False),
    "arnlike": (lambda p, v: _like(p, v), False),
    "arnnotequals": (lambda p, v: _like(p, v), True),
    "arnnotlike": (lambda p, v: _like(p, v), True),
    "bool": (lambda p, v: p.lower() == v.lower(), False),
    "numericequals": (_numeric(lambda a, b: a == b), False),
    "numericnotequals": (_numeric(lambda a, b: a == b), True),
    "numericlessthan": (_numeric(lambda a, b: a < b), False),
    "numericlessthanequals": (_numeric(lambda a, b: a <= b), False),
    "numericgreaterthan": (_numeric(lambda a, b: a > b), False),
    "numericgreaterthanequals": (_numeric(lambda a, b: a >= b), False),
}


def is_known_operator(operator: str) -> bool:
    name = operator.lower().split(":")[-1].removesuffix("ifexists")
    return name in _OPERATORS or name == "null"


def condition_applies(
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]],
    context: Mapping[str, tuple[str, ...]],
    *,
    deny: bool,
    unknown_keys: frozenset[str] = frozenset(),
) -> bool:
    """Every operator block, and every key within it, must hold (AND); values are ORed."""
    for operator, block in conditions.items():
        for key, policy_values in block.items():
            key = key.lower()
            if key in unknown_keys or not is_known_key(key) or not is_known_operator(operator):
                if not deny:
                    return False  # an Allow that needs what we cannot tell does not apply
                continue  # a Deny that needs it does
            if not _holds(operator, key, policy_values, context.get(key)):
                return False
    return True


def _holds(
    operator: str, key: str, policy_values: tuple[str, ...], values: tuple[str, ...] | None
) -> bool:
    qualifier, _, name = operator.lower().rpartition(":")
    if_exists = name.endswith("ifexists")
    name = name.removesuffix("ifexists")
    if name == "null":
        # Null: "true" means the key must be absent, "false" that it must be present.
        return any((p.lower() == "true") is (not values) for p in policy_values)
    if not values:
        # A missing key matches nothing, so only negated operators (and ...IfExists) hold;
        # ForAllValues holds over no values at all (IAM's documented "null set" rule).
        return if_exists or _OPERATORS[name][1] or qualifier == "forallvalues"
    test, negated = _OPERATORS[name]

    def one(value: str) -> bool:
        matched = any(test(p, value) for p in policy_values)
        return not matched if negated else matched

    if qualifier == "forallvalues":
        return all(one(v) for v in values)
    # Single-valued keys and ForAnyValue: any request value that satisfies the test.
    return any(one(v) for v in values)
