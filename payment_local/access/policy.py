"""IAM policy documents and how AWS evaluates one statement against one request.

Only what decides an outcome is modelled: Effect, Action/NotAction, Resource/NotResource,
Principal/NotPrincipal and Condition, with the wildcards ``*`` and ``?``. What the documents
of a principal add up to (identity, boundary, resource and key policies) is
``authorizer.decide``; this module answers "does this statement apply to this request?".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from payment_local.access.conditions import condition_applies


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class PrincipalMatch(Enum):
    """How a resource policy's Principal element names the caller."""

    NONE = "none"
    DIRECT = "direct"  # the role, the service, or "*"
    ACCOUNT = "account"  # the caller's account: defers to the caller's identity policies


@dataclass(frozen=True)
class Caller:
    """Who makes a request, as policies see them."""

    kind: str  # "role", "service", or "unidentified" (credentials no principal has)
    arn: str  # role ARN, or the service principal ("events.amazonaws.com")
    account: str

    @property
    def name(self) -> str:
        """What a person reads: the role's name, or the service principal."""
        return self.arn.rsplit("/", 1)[-1] if self.kind == "role" else self.arn


@dataclass(frozen=True)
class Request:
    """One authorization request: a caller, an action, a resource and the condition context.

    Context keys are lower-case (condition keys are case-insensitive); values are strings.
    """

    caller: Caller
    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def context_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.context)


def request(
    caller: Caller, action: str, resource: str, context: Mapping[str, Iterable[str]] | None = None
) -> Request:
    items = tuple(sorted((k.lower(), tuple(v)) for k, v in (context or {}).items()))
    return Request(caller, action, resource, items)


@dataclass(frozen=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ("*",)
    not_resources: tuple[str, ...] | None = None
    principals: Mapping[str, tuple[str, ...]] | None = None  # None: an identity policy
    not_principals: Mapping[str, tuple[str, ...]] | None = None
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    sid: str = ""

    def matches_action(self, action: str) -> bool:
        if self.not_actions is not None:
            return not any(_action_matches(p, action) for p in self.not_actions)
        return any(_action_matches(p, action) for p in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources is not None:
            return not any(_resource_matches(p, resource) for p in self.not_resources)
        return any(_resource_matches(p, resource) for p in self.resources)

    def principal_match(self, caller: Caller) -> PrincipalMatch:
        if self.not_principals is not None:
            named = _principal_match(self.not_principals, caller)
            return PrincipalMatch.DIRECT if named is PrincipalMatch.NONE else PrincipalMatch.NONE
        if self.principals is None:
            return PrincipalMatch.DIRECT  # identity policies apply to their own principal
        return _principal_match(self.principals, caller)

    def applies(self, req: Request, unknown_keys: frozenset[str]) -> bool:
        """Action, resource and conditions match (the principal is checked separately)."""
        if not (self.matches_action(req.action) and self.matches_resource(req.resource)):
            return False
        return condition_applies(
            self.conditions, req.context_map(), deny=self.effect is Effect.DENY,
            unknown_keys=unknown_keys,
        )  # fmt: skip


@dataclass(frozen=True)
class PolicyDocument:
    """A policy as the template gives it, with where it came from (for reports)."""

    source: str
    statements: tuple[Statement, ...]


def parse_document(source: str, document: Mapping[str, Any]) -> PolicyDocument:
    raw = document.get("Statement", [])
    statements = raw if isinstance(raw, list) else [raw]
    return PolicyDocument(source, tuple(_statement(s) for s in statements))


def _statement(raw: Mapping[str, Any]) -> Statement:
    return Statement(
        effect=Effect(raw.get("Effect", "Allow")),
        actions=_strings(raw.get("Action")),
        not_actions=_strings(raw["NotAction"]) if "NotAction" in raw else None,
        resources=_strings(raw.get("Resource", "*")) if "NotResource" not in raw else (),
        not_resources=_strings(raw["NotResource"]) if "NotResource" in raw else None,
        principals=_principals(raw["Principal"]) if "Principal" in raw else None,
        not_principals=_principals(raw["NotPrincipal"]) if "NotPrincipal" in raw else None,
        conditions={
            operator: {key: _strings(values) for key, values in block.items()}
            for operator, block in (raw.get("Condition") or {}).items()
        },
        sid=str(raw.get("Sid", "")),
    )


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
    return (str(value).lower() if isinstance(value, bool) else str(value),)


def _principals(value: Any) -> Mapping[str, tuple[str, ...]]:
    if value == "*":
        return {"AWS": ("*",)}
    return {kind: _strings(names) for kind, names in dict(value).items()}


def _principal_match(principals: Mapping[str, tuple[str, ...]], caller: Caller) -> PrincipalMatch:
    if caller.kind == "service":
        # "*" is every principal, services included (with aws:SourceArn, the usual way to
        # let a service deliver to a queue or topic).
        named = caller.arn in principals.get("Service", ()) or "*" in principals.get("AWS", ())
        return PrincipalMatch.DIRECT if named else PrincipalMatch.NONE
    found = PrincipalMatch.NONE
    for name in principals.get("AWS", ()):
        if name == "*" or name == caller.arn:
            return PrincipalMatch.DIRECT
        if name in (caller.account, f"arn:aws:iam::{caller.account}:root"):
            found = PrincipalMatch.ACCOUNT
    return found


def _action_matches(pattern: str, action: str) -> bool:
    return _compiled(pattern.lower()).fullmatch(action.lower()) is not None


def _resource_matches(pattern: str, resource: str) -> bool:
    return pattern == "*" or _compiled(pattern).fullmatch(resource) is not None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    # IAM wildcards: * is any run of characters (slashes included), ? is one character;
    # nothing else is special (unlike fnmatch, "[" is a literal).
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S
    )
