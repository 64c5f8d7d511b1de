"""Helpers shared by the infrastructure tests: apps that never bundle, and template queries.

Every app gets the context of cdk.json (the feature flags shape the template, e.g.
``@aws-cdk/aws-iam:minimizePolicies``), so what is tested is what ``cdk synth`` produces, plus
``aws:cdk:bundling-stacks: []`` so no pip install runs for the dependency layer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from constructs import IConstruct

from payment_stack import PaymentPostingStack, StageConfig
from payment_stack.config import STAGES_CONTEXT_KEY

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT: Mapping[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}

_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
ASSET_HASH_PLACEHOLDER = "<asset-hash>"

JsonValue = Any


def make_app(**extra_context: Any) -> cdk.App:
    """An app with the project's cdk.json context that never bundles assets."""
    return cdk.App(context={**CDK_JSON_CONTEXT, **SKIP_BUNDLING, **extra_context})


def bare_stack(name: str = "Bare") -> cdk.Stack:
    """An environment-agnostic stack of its own app: one app per synthesis."""
    return cdk.Stack(make_app(), name)


def stage_values(stage: str) -> dict[str, Any]:
    """The settings of one stage, exactly as cdk.json defines them."""
    stages: Mapping[str, dict[str, Any]] = CDK_JSON_CONTEXT[STAGES_CONTEXT_KEY]
    return dict(stages[stage])


@dataclass(frozen=True)
class Synthesized:
    """A stack and its template, synthesized once and shared by many tests."""

    stack: cdk.Stack
    template: Template

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template.to_json()["Resources"]
        return resources


def synth_payment_stack(stage: str) -> tuple[PaymentPostingStack, Template]:
    """The stage's stack, named as app.py names it, in a fresh app."""
    config = StageConfig.from_dict(stage, stage_values(stage))
    stack = PaymentPostingStack(make_app(), f"PaymentPosting-{config.name}", config=config)
    return stack, Template.from_stack(stack)


def logical_id(construct: IConstruct) -> str:
    """The logical id of a CfnResource, or of the default child of an L2 construct."""
    resource = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    assert isinstance(resource, cdk.CfnElement), f"{construct.node.path} has no CFN resource"
    resolved = cdk.Stack.of(resource).resolve(resource.logical_id)
    assert isinstance(resolved, str)
    return resolved


def get_att(construct: IConstruct, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id(construct), attribute]}


def ref(construct: IConstruct) -> dict[str, str]:
    return {"Ref": logical_id(construct)}


def table_arn(table: IConstruct) -> dict[str, Any]:
    """A table's ARN as CDK grants write it: joined from partition, region, account, name."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":dynamodb:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":table/",
                ref(table),
            ],
        ]
    }


def _as_list(value: JsonValue) -> list[JsonValue]:
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement, with Action and Resource always as lists."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[JsonValue, ...]


def role_statements(template: Template, role_id: str) -> list[Statement]:
    """Every statement of every AWS::IAM::Policy attached to the role with this logical id."""
    statements: list[Statement] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        properties = policy["Properties"]
        if {"Ref": role_id} not in properties.get("Roles", []):
            continue
        for raw in properties["PolicyDocument"]["Statement"]:
            statements.append(
                Statement(
                    effect=raw["Effect"],
                    actions=tuple(_as_list(raw.get("Action", []))),
                    resources=tuple(_as_list(raw.get("Resource", []))),
                )
            )
    return statements


def allowed_actions(template: Template, role_id: str, resource: JsonValue) -> set[str]:
    """The actions the role is allowed on exactly this resource (a token as in the template)."""
    return {
        action
        for statement in role_statements(template, role_id)
        if statement.effect == "Allow" and resource in statement.resources
        for action in statement.actions
    }


def all_allowed_actions(template: Template, role_id: str) -> set[str]:
    return {
        action
        for statement in role_statements(template, role_id)
        if statement.effect == "Allow"
        for action in statement.actions
    }


def normalize(value: JsonValue) -> JsonValue:
    """The template with every asset hash (64 hex digits) replaced, keys included, recursively.

    Asset hashes change with every edit of ``lambdas/`` and with the pinned dependencies;
    everything else in the template is a function of the code under test.
    """
    if isinstance(value, Mapping):
        return {normalize(key): normalize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        return _ASSET_HASH.sub(ASSET_HASH_PLACEHOLDER, value)
    return value


def walk(value: JsonValue) -> Iterator[JsonValue]:
    """Every value nested in a JSON document, the document included."""
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
