"""What each principal really calls, derived from every run of the end-to-end suite, checked
against the template's policies; and every grant checked to be used.

This replaces comparing a role's actions with a list written by hand: such a list says what
someone believed the code does. The calls recorded here are what it does (the rare paths
included: see test_rare_paths.py), decided by the same evaluator the local run enforces.
So each role's actions are exactly what its code uses: one more is refused here, one less
is refused by the run. Runs last (marker ``runs_last``), after every other end-to-end test
has recorded its calls.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from payment_local.access.authorizer import Authorizer, describe
from payment_local.access.policy import Effect, Statement
from payment_local.assembly import StackAssembly
from tests.e2e.conftest import RECORDED, SUMMARY, runs_the_whole_suite

pytestmark = [pytest.mark.slow, pytest.mark.runs_last]

# Calls that never happen locally, so a grant of them is expected to look unused.
NOT_CALLED_LOCALLY = ("logs:", "xray:")


def _runs_of(assembly: StackAssembly) -> list[tuple[Authorizer, dict[str, str]]]:
    return [(access, names) for template, access, names in RECORDED
            if template == assembly.template]  # fmt: skip


def _logical(resource: str, names: dict[str, str]) -> str:
    """``resource`` with the ARNs of one run replaced by logical names, longest first (a
    table's ARN is the start of its stream's): grants and calls of different runs compare."""
    for arn in sorted(names, key=len, reverse=True):
        if resource.startswith(arn):
            return names[arn] + resource[len(arn) :]
    return resource


def _principals_that_act(template: dict[str, Any]) -> set[str]:
    """Roles the template gives a function, pipe, workflow or rule target to act as."""
    acting: set[str] = set()
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        refs = [props.get("Role"), props.get("RoleArn")]
        refs += [target.get("RoleArn") for target in props.get("Targets", [])]
        for ref in refs:
            if isinstance(ref, dict) and "Fn::GetAtt" in ref:
                acting.add(f"role {ref['Fn::GetAtt'][0]}")
    return acting


def test_every_call_recorded_across_the_suite_is_allowed_by_the_template(
    assembly: StackAssembly,
) -> None:
    runs = _runs_of(assembly)
    assert runs, "no end-to-end run of this stack recorded its calls"
    calls: dict[str, set[tuple[str, str]]] = defaultdict(set)
    refused = set()
    for access, _ in runs:
        for (req, allowed), _ in access.decided.items():
            principal = describe(req.caller, req)
            calls[principal].add((req.action, req.resource))
            if not allowed:
                refused.add(f"{principal}: {req.action} on {req.resource}")

    assert not refused, "calls the template does not allow:\n" + "\n".join(sorted(refused))
    # Every principal the template makes act was seen acting, so none is checked by belief.
    seen = {p.split(" for ")[0] for p in calls}
    assert _principals_that_act(assembly.template) <= seen, (
        _principals_that_act(assembly.template) - seen
    )
    assert any(p.startswith("events.amazonaws.com") for p in calls)


def test_every_grant_is_used_by_the_suite(assembly: StackAssembly) -> None:
    runs = _runs_of(assembly)
    assert runs
    model, names = runs[0][0].model, runs[0][1]
    used: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for access, run_names in runs:
        for (req, allowed), _ in access.decided.items():
            if allowed and req.caller.kind == "role":
                used[req.caller.arn].add((req.action, _logical(req.resource, run_names)))

    unused = []
    for role in model.roles.values():
        for document in role.policies:
            for statement in document.statements:
                if statement.effect is Effect.ALLOW:
                    unused += [
                        f"role {role.name}: {action} on {_logical(resource, names)}"
                        for action, resource in _grants(statement)
                        if not action.startswith(NOT_CALLED_LOCALLY)
                        and not _used(action, _logical(resource, names), used[role.arn])
                    ]
    SUMMARY[:] = sorted(set(unused))
    if not runs_the_whole_suite():
        pytest.skip("grants are compared with the calls of the whole end-to-end suite")
    assert SUMMARY == [], "granted, and called by no run of the suite:\n" + "\n".join(SUMMARY)


def _grants(statement: Statement) -> list[tuple[str, str]]:
    return [(a, r) for a in statement.actions for r in statement.resources]


def _used(action: str, resource: str, calls: set[tuple[str, str]]) -> bool:
    probe = Statement(Effect.ALLOW, actions=(action,), resources=(resource,))
    return any(probe.matches_action(called) and probe.matches_resource(on) for called, on in calls)
