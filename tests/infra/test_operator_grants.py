"""The grants an operator's role reaches for: each names its actions on the one resource it is
for, and the key only through the service that holds the data (``kms:ViaService``); nothing
more, no wildcard for cdk-nag to flag.

Each permission is compared as (action, resource, condition) triples, so how CDK merges
statements does not matter. That the grants suffice for the calls is shown locally, under the
runtime's access enforcement, by ``tests/e2e/test_given_roles_and_grants.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template
from constructs import IConstruct

from payment_stack import BufferedPoster, IngestPipe, PostingTarget
from tests.infra.support import bare_stack, get_att, logical_id, table_arn
from tests.infra.test_nag import PACKS, findings

pytestmark = pytest.mark.slow

Triple = tuple[str, str, str]


def _via(service: str) -> dict[str, Any]:
    return {
        "StringEquals": {
            "kms:ViaService": {
                "Fn::Join": ["", [f"{service}.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
            }
        }
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _triples(statements: list[dict[str, Any]]) -> Iterator[Triple]:
    for statement in statements:
        assert statement["Effect"] == "Allow"
        condition = json.dumps(statement.get("Condition"), sort_keys=True)
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                yield action, json.dumps(resource, sort_keys=True), condition


def granted(template: dict[str, Any], role: IConstruct) -> set[Triple]:
    """Every (action, resource, condition) the role's identity policies allow."""
    role_id = logical_id(role)
    return {
        triple
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_id} in resource["Properties"]["Roles"]
        for triple in _triples(resource["Properties"]["PolicyDocument"]["Statement"])
    }


def expected(
    actions: tuple[str, ...], resource: Any, condition: dict[str, Any] | None = None
) -> set[Triple]:
    return {
        (action, json.dumps(resource, sort_keys=True), json.dumps(condition, sort_keys=True))
        for action in actions
    }


def _operator(stack: cdk.Stack, name: str) -> iam.Role:
    return iam.Role(stack, name, assumed_by=iam.AccountRootPrincipal())


def _table(construct: IConstruct, child: str) -> IConstruct:
    resource = construct.node.find_child(child).node.default_child
    assert resource is not None
    return resource


@dataclass(frozen=True)
class Ingest:
    stack: cdk.Stack
    pipe: IngestPipe
    reader: iam.Role
    query_only: iam.Role
    template: dict[str, Any]


@pytest.fixture(scope="module")
def ingest() -> Ingest:
    stack = bare_stack()
    pipe = IngestPipe(stack, "Ingest")
    reader = _operator(stack, "QuarantineReader")
    pipe.grant_read_quarantine(reader)
    query_only = _operator(stack, "QuarantineQuery")
    pipe.grant_read_quarantine(query_only, "dynamodb:Query")
    return Ingest(stack, pipe, reader, query_only, dict(Template.from_stack(stack).to_json()))


@dataclass(frozen=True)
class Posting:
    stack: cdk.Stack
    poster: BufferedPoster
    key: kms.Key
    ledger_key: kms.Key
    ledger_reader: iam.Role
    dead_letter_reader: iam.Role
    redriver: iam.Role
    template: dict[str, Any]


@pytest.fixture(scope="module")
def posting() -> Posting:
    stack = bare_stack()
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    ledger_key = kms.Key(stack, "LedgerKey", enable_key_rotation=True)
    poster = BufferedPoster(
        stack,
        "Posting",
        event_bus=events.EventBus(stack, "Bus"),
        encryption_key=key,
        ledger_key=ledger_key,
    )
    roles = {name: _operator(stack, name) for name in ("Ledger", "DeadLetters", "Redrive")}
    poster.grant_read_ledger(roles["Ledger"])
    poster.grant_read_dead_letters(roles["DeadLetters"])
    poster.grant_redrive(roles["Redrive"])
    return Posting(
        stack,
        poster,
        key,
        ledger_key,
        roles["Ledger"],
        roles["DeadLetters"],
        roles["Redrive"],
        dict(Template.from_stack(stack).to_json()),
    )


def test_read_quarantine_reads_the_quarantine_alone(ingest: Ingest) -> None:
    quarantine = table_arn(_table(ingest.pipe, "QuarantineTable"))
    key = get_att(ingest.pipe.encryption_key)
    assert granted(ingest.template, ingest.reader) == expected(
        ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"), quarantine
    ) | expected(("kms:Decrypt",), key, _via("dynamodb"))
    assert granted(ingest.template, ingest.query_only) == expected(
        ("dynamodb:Query",), quarantine
    ) | expected(("kms:Decrypt",), key, _via("dynamodb"))


def test_read_quarantine_refuses_what_a_reader_does_not_call() -> None:
    stack = bare_stack()
    pipe = IngestPipe(stack, "Ingest")
    with pytest.raises(ValueError, match=r"a reader of the quarantine calls .*not dynamodb:Put"):
        pipe.grant_read_quarantine(_operator(stack, "Reader"), "dynamodb:PutItem")


def test_read_ledger_reads_the_ledger_with_its_own_key(posting: Posting) -> None:
    reads = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
    journal = table_arn(_table(posting.poster, "LedgerJournal"))
    balances = table_arn(_table(posting.poster, "LedgerBalances"))
    # Both tables of ledger v2, with the ledger's key, not the key of the queues and
    # idempotency records.
    assert granted(posting.template, posting.ledger_reader) == expected(reads, journal) | expected(
        reads, balances
    ) | expected(("kms:Decrypt",), get_att(posting.ledger_key), _via("dynamodb"))


def test_read_ledger_is_refused_for_an_http_target_and_for_a_write() -> None:
    stack = bare_stack()
    http = BufferedPoster(
        stack,
        "Posting",
        event_bus=events.EventBus(stack, "Bus"),
        posting_target=PostingTarget.http("https://core.example/api"),
    )
    with pytest.raises(ValueError, match=r"grant_read_ledger applies to PostingTarget\.ledger"):
        http.grant_read_ledger(_operator(stack, "Reader"))
    ledger = BufferedPoster(stack, "Ledger", event_bus=events.EventBus(stack, "Other"))
    with pytest.raises(ValueError, match=r"a reader of the ledger calls .*not dynamodb:Delete"):
        ledger.grant_read_ledger(_operator(stack, "Writer"), "dynamodb:DeleteItem")


def test_open_accounts_is_refused_for_an_http_target_and_so_is_a_sweeper_role() -> None:
    stack = bare_stack()
    http = BufferedPoster(
        stack,
        "Posting",
        event_bus=events.EventBus(stack, "Bus"),
        posting_target=PostingTarget.http("https://core.example/api"),
    )
    with pytest.raises(ValueError, match=r"grant_open_accounts applies to PostingTarget\.ledger"):
        http.grant_open_accounts(_operator(stack, "Opener"))
    with pytest.raises(ValueError, match=r"sweeper_role apply to PostingTarget\.ledger"):
        BufferedPoster(
            stack,
            "Other",
            event_bus=events.EventBus(stack, "OtherBus"),
            posting_target=PostingTarget.http("https://core.example/api"),
            sweeper_role=iam.Role(
                stack, "Sweeper", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
            ),
        )


def test_read_dead_letters_receives_from_the_dead_letter_queue_alone(posting: Posting) -> None:
    assert granted(posting.template, posting.dead_letter_reader) == expected(
        ("sqs:ReceiveMessage", "sqs:GetQueueAttributes"), get_att(posting.poster.dead_letter_queue)
    ) | expected(("kms:Decrypt",), get_att(posting.key), _via("sqs"))


def test_redrive_moves_dead_letters_into_the_buffer_alone(posting: Posting) -> None:
    dead_letters = get_att(posting.poster.dead_letter_queue)
    source_actions = (
        "sqs:StartMessageMoveTask",
        "sqs:ListMessageMoveTasks",
        "sqs:CancelMessageMoveTask",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    )
    assert granted(posting.template, posting.redriver) == (
        expected(source_actions, dead_letters)
        | expected(("sqs:SendMessage",), get_att(posting.poster.queue))
        # Decrypt what the dead-letter queue holds, encrypt it again for the buffer.
        | expected(("kms:Decrypt", "kms:GenerateDataKey"), get_att(posting.key), _via("sqs"))
    )


def test_operator_grants_name_every_action_and_resource_so_cdk_nag_finds_no_wildcard(
    ingest: Ingest, posting: Posting
) -> None:
    """What the README's grant example ran into with CDK's grants (``kms:ReEncrypt*``): here
    a role holding these grants has only the inline-policy finding every granted role has."""
    for stack, roles in (
        (ingest.stack, [ingest.reader, ingest.query_only]),
        (
            posting.stack,
            [posting.ledger_reader, posting.dead_letter_reader, posting.redriver],
        ),
    ):
        found = set(findings(pack().validate_scope(stack) for pack in PACKS.values()))
        for role in roles:
            on_role = {rule for rule, path in found if path.startswith(f"{role.node.path}/")}
            assert on_role == {"PCI.DSS.321-IAMNoInlinePolicy", "NIST.800.53.R5-IAMNoInlinePolicy"}


def test_every_grant_returns_the_grant_it_made_as_cdk_grants_do() -> None:
    """A caller can depend on the grant (``grant.apply_before(resource)``) or check it."""
    stack = bare_stack()
    bus = events.EventBus(stack, "Bus")
    key = kms.Key(stack, "Key")
    ingest = IngestPipe(stack, "Ingest", event_bus=bus, encryption_key=key)
    poster = BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key)
    role = _operator(stack, "Operator")
    grants = {
        "grant_write_transactions": ingest.grant_write_transactions(role),
        "grant_read_quarantine": ingest.grant_read_quarantine(role),
        "grant_read_ledger": poster.grant_read_ledger(role),
        "grant_read_dead_letters": poster.grant_read_dead_letters(role),
        "grant_redrive": poster.grant_redrive(role),
    }
    for name, grant in grants.items():
        assert isinstance(grant, iam.Grant), name
        assert grant.success, name
        actions = {
            action
            for statement in grant.principal_statements
            for action in _as_list(statement.to_statement_json()["Action"])
        }
        assert "kms:Decrypt" in actions, name  # the key's grant is part of what is returned
        assert any(not a.startswith("kms:") for a in actions), name
