"""A role given for what a construct would otherwise create: the construct runs as it and grants
it exactly what its own role would have had, creates no role in its place, refuses what is not
a role (or a role the service cannot assume), and leaves the role's cdk-nag findings to its
owner.

Each case builds the construct twice in a bare stack: with its own role, and with a role the
user made (``UserRole``). Rename the user's role (and its policy) to the construct's, and the
two templates are the same but for the role's own description and trust policy: the same
statements, conditions (the keys' ``kms:ViaService``) and key policies, naming the user's role.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template
from constructs import Construct, IConstruct

from payment_stack import (
    BufferedPoster,
    CoreBankingCredentials,
    CoreBankingNetwork,
    EnrichmentProcessor,
    IngestPipe,
    PostingTarget,
    RulesEngine,
    ScreeningOutcomes,
    acknowledge,
    acknowledge_inline_policy,
)
from payment_stack.rules_engine import RULE_ROLE_ID
from tests.infra.support import bare_stack, get_att, logical_id
from tests.infra.test_nag import PACKS, findings

pytestmark = pytest.mark.slow

USER_ROLE = "UserRole"


def _bus(stack: cdk.Stack) -> events.EventBus:
    return events.EventBus(stack, "Bus")


def _ingest(stack: cdk.Stack, **props: Any) -> IngestPipe:
    return IngestPipe(stack, "Ingest", **props)


def _poster(stack: cdk.Stack, **props: Any) -> BufferedPoster:
    return BufferedPoster(stack, "Posting", event_bus=_bus(stack), **props)


def _http_poster_in_a_vpc(stack: cdk.Stack, **props: Any) -> BufferedPoster:
    """Posting over HTTPS from a VPC, with its credential from a secret: every grant there is."""
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1)
    target = PostingTarget.http(
        "https://core.example/api",
        credentials=CoreBankingCredentials(secretsmanager.Secret(stack, "Token")),
        network=CoreBankingNetwork(vpc=vpc, core_system=ec2.Peer.ipv4("10.20.0.0/16")),
    )
    return BufferedPoster(stack, "Posting", event_bus=_bus(stack), posting_target=target, **props)


def _rules(stack: cdk.Stack, **props: Any) -> RulesEngine:
    return RulesEngine(stack, "Rules", event_bus=_bus(stack), **props)


def _enrichment(stack: cdk.Stack, **props: Any) -> EnrichmentProcessor:
    return EnrichmentProcessor(stack, "Enrichment", event_bus=_bus(stack), **props)


def _outcomes(stack: cdk.Stack, **props: Any) -> ScreeningOutcomes:
    return ScreeningOutcomes(stack, "Outcomes", event_bus=_bus(stack), **props)


def _function_role(construct: IConstruct, function_id: str) -> IConstruct:
    return construct.node.find_child(function_id).node.find_child("Role")


def _function_uses(template: dict[str, Any], construct: Construct, role: IConstruct) -> bool:
    """Exactly one function runs as the role (a construct may have more than one function:
    the poster with the ledger has its expiry sweeper)."""
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    return [f["Properties"]["Role"] for f in functions].count(get_att(role)) == 1


def _pipe_uses(template: dict[str, Any], construct: Construct, role: IConstruct) -> bool:
    [pipe] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Pipes::Pipe"]
    return bool(pipe["Properties"]["RoleArn"] == get_att(role))


def _dedup_uses(template: dict[str, Any], construct: Construct, role: IConstruct) -> bool:
    assert isinstance(construct, IngestPipe)
    function = template["Resources"][logical_id(construct.dedup_function)]
    return bool(function["Properties"]["Role"] == get_att(role))


def _state_machine_uses(template: dict[str, Any], construct: Construct, role: IConstruct) -> bool:
    [machine] = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    return bool(machine["Properties"]["RoleArn"] == get_att(role))


def _rule_uses(template: dict[str, Any], construct: Construct, role: IConstruct) -> bool:
    assert isinstance(construct, RulesEngine)
    [target] = template["Resources"][logical_id(construct.rule)]["Properties"]["Targets"]
    return bool(target["RoleArn"] == get_att(role))


@dataclass(frozen=True)
class Case:
    """One role a construct creates unless it is given one."""

    name: str
    build: Callable[..., Construct]
    prop: str
    service: str  # the service principal that assumes it, without ".amazonaws.com"
    own_role: Callable[[Construct], IConstruct]  # the role the construct creates
    uses: Callable[[dict[str, Any], Construct, IConstruct], bool]  # runs as that role
    # cdk-nag findings on the role (beyond the inline-policy rule of the PCI DSS and NIST
    # packs, which every role with a grant has): services that accept only '*'.
    wildcard: bool


CASES = [
    Case("IngestPipe pipe", _ingest, "pipe_role", "pipes",
         lambda c: c.node.find_child("PipeRole"), _pipe_uses, wildcard=False),
    Case("IngestPipe dedup function", _ingest, "dedup_function_role", "lambda",
         lambda c: _function_role(c, "Dedup"), _dedup_uses, wildcard=True),
    Case("BufferedPoster function", _poster, "role", "lambda",
         lambda c: _function_role(c, "Poster"), _function_uses, wildcard=True),
    Case("BufferedPoster expiry sweeper", _poster, "sweeper_role", "lambda",
         lambda c: _function_role(c.node.find_child("ExpirySweeper"), "Function"),
         _function_uses, wildcard=True),
    Case("BufferedPoster HTTP function in a VPC", _http_poster_in_a_vpc, "role", "lambda",
         lambda c: _function_role(c, "Poster"), _function_uses, wildcard=True),
    Case("RulesEngine workflow", _rules, "state_machine_role", "states",
         lambda c: c.node.find_child("StateMachine").node.find_child("Role"),
         _state_machine_uses, wildcard=True),
    Case("RulesEngine rule", _rules, "rule_role", "events",
         lambda c: c.node.find_child("StateMachine").node.find_child(RULE_ROLE_ID),
         _rule_uses, wildcard=False),
    Case("EnrichmentProcessor function", _enrichment, "role", "lambda",
         lambda c: _function_role(c, "Enrich"), _function_uses, wildcard=True),
    Case("ScreeningOutcomes function", _outcomes, "role", "lambda",
         lambda c: _function_role(c, "Outcomes"), _function_uses, wildcard=True),
]  # fmt: skip


@dataclass(frozen=True)
class Pair:
    """The construct with its own role, and with the user's."""

    case: Case
    own: cdk.Stack
    own_construct: Construct
    own_template: dict[str, Any]
    given: cdk.Stack
    given_construct: Construct
    given_role: iam.Role
    given_template: dict[str, Any]


def _user_role(stack: cdk.Stack, service: str) -> iam.Role:
    return iam.Role(stack, USER_ROLE, assumed_by=iam.ServicePrincipal(f"{service}.amazonaws.com"))


# The logical id CDK gives the user's role (the same in every bare stack).
USER_ROLE_ID = logical_id(_user_role(bare_stack(), "lambda"))


def _pair(case: Case) -> Pair:
    own = bare_stack()
    own_construct = case.build(own)
    given = bare_stack()
    role = _user_role(given, case.service)
    given_construct = case.build(given, **{case.prop: role})
    return Pair(
        case,
        own,
        own_construct,
        dict(Template.from_stack(own).to_json()),
        given,
        given_construct,
        role,
        dict(Template.from_stack(given).to_json()),
    )


@pytest.fixture(scope="module", params=CASES, ids=[case.name for case in CASES])
def pair(request: pytest.FixtureRequest) -> Pair:
    case: Case = request.param
    return _pair(case)


def _policy_of(template: dict[str, Any], role_id: str) -> str:
    [policy] = [
        str(lid)
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    return policy


def _renamed(template: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(template)
    for old, new in names.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    return dict(json.loads(text))


def _without_role_identity(template: dict[str, Any], role_id: str) -> dict[str, Any]:
    """The template without what differs by design: the role's description and trust policy
    (the user's own), and construct paths."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        resource.pop("Metadata", None)
    properties = template["Resources"][role_id]["Properties"]
    properties.pop("Description", None)
    properties.pop("AssumeRolePolicyDocument")
    return template


def test_the_construct_runs_as_the_given_role(pair: Pair) -> None:
    assert pair.case.uses(pair.given_template, pair.given_construct, pair.given_role)
    # And, as the contrast that makes the check mean something, as its own role by default.
    own_role = pair.case.own_role(pair.own_construct)
    assert pair.case.uses(pair.own_template, pair.own_construct, own_role)


def test_no_role_is_created_in_its_place(pair: Pair) -> None:
    def roles(template: dict[str, Any]) -> set[str]:
        return {lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}

    own_id = logical_id(pair.case.own_role(pair.own_construct))
    assert own_id not in roles(pair.given_template)
    assert roles(pair.given_template) == roles(pair.own_template) - {own_id} | {USER_ROLE_ID}


def test_the_given_role_gets_exactly_the_grants_the_own_role_would(pair: Pair) -> None:
    own_id = logical_id(pair.case.own_role(pair.own_construct))
    names = {
        USER_ROLE_ID: own_id,
        _policy_of(pair.given_template, USER_ROLE_ID): _policy_of(pair.own_template, own_id),
    }
    given = _without_role_identity(_renamed(pair.given_template, names), own_id)
    own = _without_role_identity(pair.own_template, own_id)
    assert given == own
    # The comparison covers the grants: the policy is there, with statements.
    statements = given["Resources"][names[_policy_of(pair.given_template, USER_ROLE_ID)]]
    assert statements["Properties"]["PolicyDocument"]["Statement"]


def _findings(stack: cdk.Stack) -> set[tuple[str, str]]:
    return set(findings(pack().validate_scope(stack) for pack in PACKS.values()))


def test_the_role_keeps_its_findings_for_its_owner_who_can_acknowledge_them(pair: Pair) -> None:
    """The construct acknowledges nothing on a role it did not create; what the role's owner
    sees is the inline policy (PCI DSS, NIST) and, where a service accepts only '*', the
    wildcard; acknowledged with the exported helpers, nothing else is left."""
    given = _findings(pair.given)
    on_user_role = {(rule, path) for rule, path in given if f"/{USER_ROLE}/" in path}
    # Elsewhere, nothing changes: the construct's other findings are what they are by default.
    assert given - on_user_role == _findings(pair.own)
    user_path = f"{pair.given.node.path}/{USER_ROLE}/DefaultPolicy/Resource"
    expected = {
        ("PCI.DSS.321-IAMNoInlinePolicy", user_path),
        ("NIST.800.53.R5-IAMNoInlinePolicy", user_path),
    }
    if pair.case.wildcard:
        expected.add(("AwsSolutions-IAM5[Resource::*]", user_path))
    assert on_user_role == expected

    acknowledged = _pair_acknowledged(pair.case)
    assert _findings(acknowledged) == _findings(pair.own)


def _pair_acknowledged(case: Case) -> cdk.Stack:
    stack = bare_stack()
    role = _user_role(stack, case.service)
    case.build(stack, **{case.prop: role})
    acknowledge_inline_policy(role)
    if case.wildcard:
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray and log delivery accept only '*' as resource; AWS documents no other form.",
        )
    return stack


def _builders() -> Iterator[tuple[str, Callable[..., Construct], str, str]]:
    seen = set()
    for case in CASES:
        if (case.build, case.prop) not in seen:
            seen.add((case.build, case.prop))
            yield case.name, case.build, case.prop, case.service


PROPS = list(_builders())


@pytest.mark.parametrize(
    "value",
    ["arn:aws:iam::123456789012:role/Mine", iam.ServicePrincipal("lambda.amazonaws.com")],
    ids=["an ARN string", "a principal"],
)
@pytest.mark.parametrize(("name", "build", "prop", "service"), PROPS, ids=[p[0] for p in PROPS])
def test_what_is_not_a_role_is_refused_naming_the_prop(
    name: str, build: Callable[..., Construct], prop: str, service: str, value: Any
) -> None:
    with pytest.raises(TypeError, match=rf"{prop} must be an iam\.IRole"):
        build(bare_stack(), **{prop: value})


@pytest.mark.parametrize(("name", "build", "prop", "service"), PROPS, ids=[p[0] for p in PROPS])
def test_a_role_the_service_cannot_assume_is_refused_naming_both(
    name: str, build: Callable[..., Construct], prop: str, service: str
) -> None:
    stack = bare_stack()
    other = "sqs" if service != "sqs" else "sns"
    role = iam.Role(stack, "Wrong", assumed_by=iam.ServicePrincipal(f"{other}.amazonaws.com"))
    with pytest.raises(ValueError, match=rf"{prop} must be assumable by {service}\.amazonaws"):
        build(stack, **{prop: role})


def test_a_role_trusting_several_services_or_a_regional_principal_is_accepted() -> None:
    stack = bare_stack()
    composite = iam.Role(
        stack,
        "Composite",
        assumed_by=iam.CompositePrincipal(
            iam.ServicePrincipal("lambda.amazonaws.com"),
            iam.ServicePrincipal("pipes.amazonaws.com"),
        ),
    )
    regional = iam.Role(
        stack, "Regional", assumed_by=iam.ServicePrincipal("states.eu-west-1.amazonaws.com")
    )
    IngestPipe(stack, "Ingest", pipe_role=composite, dedup_function_role=composite)
    RulesEngine(stack, "Rules", event_bus=_bus(stack), state_machine_role=regional)


def test_an_imported_immutable_role_is_used_and_gets_nothing_added() -> None:
    """As CDK's own constructs do: the role is used, its policy is the owner's to write."""
    stack = bare_stack()
    arn = "arn:aws:iam::123456789012:role/payments-pipe"
    role = iam.Role.from_role_arn(stack, "Imported", arn, mutable=False)
    ingest = IngestPipe(stack, "Ingest", pipe_role=role)
    template = Template.from_stack(stack).to_json()

    [pipe] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Pipes::Pipe"]
    assert pipe["Properties"]["RoleArn"] == arn
    assert ingest.node.try_find_child("PipeRole") is None
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    assert all(arn not in json.dumps(p) for p in policies)
    # The key is the construct's own, so its policy still lets the role use it for the pipe.
    assert any(
        r["Type"] == "AWS::KMS::Key" and arn in json.dumps(r["Properties"]["KeyPolicy"])
        for r in template["Resources"].values()
    )
