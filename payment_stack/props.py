"""Checks of construct props that Python's types do not enforce at run time.

A number prop given as a string ("10") or a float (0.5) would otherwise surface as a
TypeError deep inside CDK or, worse, synthesize (a float threshold becomes a float in the
workflow's comparison). Unresolved tokens are skipped: their values are known only at deploy.
A role given for what a construct would otherwise create is checked to be a role, and one made
in the app to trust the service that will assume it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import cast

from aws_cdk import Stack, Token
from aws_cdk import aws_iam as iam


def whole_number(owner: str, name: str, value: object) -> None:
    """Refuse anything but an ``int`` (``bool`` included, which Python counts as one)."""
    if Token.is_unresolved(value):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{owner}: {name} must be a whole number (int), got {type(value).__name__} {value!r}"
        )


def file_path(owner: str, name: str, value: object) -> Path:
    """A path given as ``str`` or ``os.PathLike``, as a ``Path``."""
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(
        f"{owner}: {name} must be a path (str or pathlib.Path), got {type(value).__name__}"
    )


# What every ``iam.IRole`` has (jsii interfaces cannot be checked with ``isinstance``); an
# ``iam.User`` or a principal has some of these, never all.
_ROLE_MEMBERS = ("role_arn", "role_name", "grant_principal", "add_to_principal_policy")


def role(owner: str, name: str, value: object, service: str) -> iam.IRole | None:
    """``value`` as the role ``service`` (e.g. ``"lambda"``) runs a construct's part as.

    Anything but an ``iam.IRole`` is refused. For a role made in this app (an ``iam.Role``),
    its trust policy must also let the service assume it; an imported role's trust policy is
    not in the app, so it cannot be checked (nor can a principal given as a token).
    """
    if value is None:
        return None
    if not all(hasattr(value, member) for member in _ROLE_MEMBERS):
        raise TypeError(
            f"{owner}: {name} must be an iam.IRole (an iam.Role, or one imported with "
            f"iam.Role.from_role_arn), got {type(value).__name__}"
        )
    if isinstance(value, iam.Role) and not _trusts(value, service):
        raise ValueError(
            f"{owner}: {name} must be assumable by {service}.amazonaws.com, which runs this part "
            f"of the construct; its trust policy does not allow it (create it with "
            f"assumed_by=iam.ServicePrincipal('{service}.amazonaws.com'))"
        )
    return cast(iam.IRole, value)


def _trusts(role: iam.Role, service: str) -> bool:
    """Whether the role's trust policy allows sts:AssumeRole to ``service`` (regional forms of
    the principal included), or names a principal only known at deploy time."""
    if role.assume_role_policy is None:
        return False
    document = Stack.of(role).resolve(role.assume_role_policy.to_json())
    principal = re.compile(rf"{re.escape(service)}(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?")
    for statement in document.get("Statement", []):
        actions = statement.get("Action", [])
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in _as_list(actions):
            continue
        principals = statement.get("Principal")
        services = principals.get("Service", []) if isinstance(principals, dict) else []
        for value in _as_list(services):
            if not isinstance(value, str) or principal.fullmatch(value):
                return True
    return False


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]
