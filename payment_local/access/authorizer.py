"""The decision AWS makes for a request, from the template's policies, and the run's record.

Within one account, as AWS evaluates it:
- an explicit Deny in any policy that applies wins;
- a role is allowed by its identity policies (within its permissions boundary, if it has
  one) or by a resource policy that names it;
- a service principal (EventBridge delivering to a target) only by the resource policy;
- a KMS key only by its key policy: directly, or by a statement for the account (the
  "enable IAM policies" statement) together with the caller's identity policies.
Service control policies, session policies and cross-account access are out of scope.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from payment_local.access.calls import Check
from payment_local.access.model import AccessModel
from payment_local.access.policy import (
    Caller,
    Effect,
    PolicyDocument,
    PrincipalMatch,
    Request,
    Statement,
    request,
)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class AccessDenied(Exception):  # noqa: N818 - named after the error AWS answers with
    """A call AWS would refuse; the message reads like AWS's."""

    def __init__(self, req: Request, reason: str) -> None:
        who = (
            f"arn:aws:sts::{req.caller.account}:assumed-role/{req.caller.name}"
            if req.caller.kind == "role"
            else req.caller.arn
        )
        super().__init__(
            f"User: {who} is not authorized to perform: {req.action} on resource: "
            f"{req.resource} {reason}"
        )
        self.request = req


@dataclass
class Denial:
    principal: str
    action: str
    resource: str
    count: int

    def to_json(self) -> dict[str, object]:
        return {
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "count": self.count,
        }


@dataclass
class Authorizer:
    """Decides requests against one access model and remembers every one it decided."""

    model: AccessModel
    enforce: bool = True
    decided: Counter[tuple[Request, bool]] = field(default_factory=Counter)
    _cache: dict[Request, Decision] = field(default_factory=dict)
    _credentials: dict[str, Caller] = field(default_factory=dict)  # access key -> role
    # The runtime's own credentials: its plumbing is not a template principal.
    plumbing_keys: set[str | None] = field(default_factory=set)
    seconds: float = 0.0  # time spent deciding, for the bench
    _unknown_keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._unknown_keys = frozenset(k.lower() for k in self.model.unknown_condition_keys())

    # -- principals -----------------------------------------------------------------------

    def role(self, role_arn: str) -> Caller:
        return Caller("role", role_arn, self.model.account)

    def service(self, name: str) -> Caller:
        return Caller("service", name, self.model.account)

    def credentials_for(self, role_arn: str) -> Credentials:
        """Credentials that identify ``role_arn``, as Lambda puts them in a function's
        environment; every call signed with them is authorized as that role."""
        digest = hashlib.sha256(role_arn.encode()).hexdigest().upper()
        access_key = "ASIA" + digest[:16]
        self._credentials[access_key] = self.role(role_arn)
        return Credentials(access_key, "local-secret-" + digest[16:32], "local-token")

    def caller_for(self, access_key: str | None) -> Caller | None:
        """The template principal these credentials identify, if any."""
        return self._credentials.get(access_key or "")

    # -- decisions ------------------------------------------------------------------------

    def check(self, caller: Caller, checks: Sequence[Check]) -> AccessDenied | None:
        """Decide each check in turn; the first refused one is returned (AWS stops there)."""
        if not self.enforce:
            return None
        started = time.perf_counter()
        try:
            return self._check(caller, checks)
        finally:
            self.seconds += time.perf_counter() - started

    def _check(self, caller: Caller, checks: Sequence[Check]) -> AccessDenied | None:
        for item in checks:
            who = item.caller or caller
            context = dict(_base_context(who, self.model.region))
            context.update({k.lower(): v for k, v in item.context.items()})
            req = request(who, item.action, item.resource, context)
            decision = self.decide(req)
            self.decided[(req, decision.allowed)] += 1
            if not decision.allowed and item.blocking:
                return AccessDenied(req, decision.reason)
        return None

    def decide(self, req: Request) -> Decision:
        cached = self._cache.get(req)
        if cached is None:
            cached = self._cache[req] = self._decide(req)
        return cached

    def _decide(self, req: Request) -> Decision:
        caller = req.caller
        if caller.kind == "unidentified":
            return Decision(False, "because the local check cannot tell which principal made it")
        role = self.model.roles.get(caller.arn) if caller.kind == "role" else None
        is_key = req.action.lower().startswith("kms:")
        resource_documents = (
            [self.model.key_policies[req.resource]]
            if is_key and req.resource in self.model.key_policies
            else self.model.resource_policies.get(_policy_owner(req.resource), [])
        )
        identity = role.policies if role else []
        boundary = role.boundary if role else None
        for document in [*identity, *(boundary or []), *resource_documents]:
            for statement in document.statements:
                if statement.effect is Effect.DENY and self._applies(statement, req):
                    return Decision(False, f"with an explicit deny in {document.source}")
        identity_allows = any(self._allows(d, req) for d in identity)
        direct = any(self._allows(d, req, PrincipalMatch.DIRECT) for d in resource_documents)
        # A boundary limits identity policies and, within the account, what a resource
        # policy grants to the role's ARN too.
        bounded = boundary is not None and not any(self._allows(d, req) for d in boundary)
        if bounded and (identity_allows or direct):
            return Decision(False, f"because {role.logical_id if role else ''}'s "
                                   "permissions boundary does not allow it")  # fmt: skip
        delegated = any(self._allows(d, req, PrincipalMatch.ACCOUNT) for d in resource_documents)
        if is_key:
            if req.resource not in self.model.key_policies:
                # A key outside the template: assume the default key policy, which leaves
                # access to IAM policies (see the notes at start).
                delegated = True
            if direct or (delegated and identity_allows):
                return Decision(True)
            if caller.kind == "service" or not delegated:
                return Decision(False, "because the key policy does not allow it")
            return Decision(False, "because no identity-based policy allows it and the key "
                                   "policy leaves it to IAM")  # fmt: skip
        if identity_allows or direct:
            return Decision(True)
        if caller.kind == "service":
            return Decision(False, "because no resource-based policy allows it")
        return Decision(False, f"because no identity-based policy allows the {req.action} action")

    def _applies(self, statement: Statement, req: Request) -> bool:
        if statement.principal_match(req.caller) is PrincipalMatch.NONE:
            return False
        return statement.applies(req, self._unknown_keys)

    def _allows(
        self, document: PolicyDocument, req: Request, how: PrincipalMatch | None = None
    ) -> bool:
        for statement in document.statements:
            if statement.effect is not Effect.ALLOW:
                continue
            if how is not None and statement.principal_match(req.caller) is not how:
                continue
            if how is None and statement.principals is not None:
                continue  # a resource policy is not an identity policy
            if statement.applies(req, self._unknown_keys):
                return True
        return False

    def check_assume_role(
        self, role_arn: str, service: str, source_arn: str | None = None
    ) -> AccessDenied | None:
        """May ``service`` assume ``role_arn`` (on behalf of ``source_arn``)? Its trust policy
        decides; a role outside the template cannot be read, so it is refused."""
        if not self.enforce:
            return None
        context = {"aws:sourceaccount": (self.model.account,)}
        if source_arn:
            context["aws:sourcearn"] = (source_arn,)
        req = request(self.service(service), "sts:AssumeRole", role_arn, context)
        role = self.model.roles.get(role_arn)
        decision = Decision(False, "because the role is not in the template")
        if role is not None and role.trust is not None:
            decision = Decision(False, "because the role's trust policy does not allow it")
            statements = role.trust.statements
            denied = any(s.effect is Effect.DENY and self._applies(s, req) for s in statements)
            if not denied and self._allows(role.trust, req, PrincipalMatch.DIRECT):
                decision = Decision(True)
        self.decided[(req, decision.allowed)] += 1
        return None if decision.allowed else AccessDenied(req, decision.reason)

    # -- the record -----------------------------------------------------------------------

    def denials(self) -> list[Denial]:
        counts: Counter[tuple[str, str, str]] = Counter()
        for (req, allowed), count in self.decided.items():
            if not allowed:
                counts[(describe(req.caller, req), req.action, req.resource)] += count
        return [Denial(p, a, r, n) for (p, a, r), n in sorted(counts.items())]


def describe(caller: Caller, req: Request | None = None) -> str:
    """How a report names a principal: the role, or the service and on whose behalf."""
    if caller.kind == "role":
        return f"role {caller.name}"
    source = dict(req.context).get("aws:sourcearn", ()) if req else ()
    return f"{caller.arn} for {source[0]}" if source else caller.arn


def _base_context(caller: Caller, region: str) -> dict[str, tuple[str, ...]]:
    # Every SDK call goes over TLS, so aws:SecureTransport is true.
    context: dict[str, tuple[str, ...]] = {
        "aws:securetransport": ("true",),
        "aws:requestedregion": (region,),
    }
    if caller.kind == "role":
        context.update(
            {
                "aws:principalarn": (caller.arn,),
                "aws:principalaccount": (caller.account,),
                "aws:principaltype": ("AssumedRole",),
            }
        )
    else:
        context["aws:principalservicename"] = (caller.arn,)
    return context


def _policy_owner(resource: str) -> str:
    """The ARN a resource policy is attached to (a function, not its version; a table, not
    its index)."""
    if ":lambda:" in resource and ":function:" in resource:
        return ":".join(resource.split(":")[:7])
    if ":dynamodb:" in resource and "/index/" in resource:
        return resource.split("/index/")[0]
    return resource
