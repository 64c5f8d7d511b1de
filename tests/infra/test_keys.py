"""One customer-managed key per data domain, used by roles only through the service that
holds the data, by services only for this stack's resources (docs/adr/0010).

What each role must be allowed is derived from the calls the code makes
(tests/e2e/test_permissions_used.py); here, what the template must say whatever the calls.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from constructs import IConstruct

from payment_stack import PaymentPostingStack
from tests.infra.support import Synthesized, logical_id

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("stage", ["dev", "prod"])]

KEY_PROPERTIES = ("KmsMasterKeyId", "KmsKeyId", "KmsKeyIdentifier")
EVENTS = {"Service": "events.amazonaws.com"}
# What a role may do with a key, through each service (SQS and SNS senders need a data key).
ACTIONS_THROUGH = {
    "dynamodb": {"kms:Decrypt"},
    "sqs": {"kms:Decrypt", "kms:GenerateDataKey"},
    "sns": {"kms:Decrypt", "kms:GenerateDataKey"},
}


def _stack(stage: str, request: pytest.FixtureRequest) -> tuple[Synthesized, PaymentPostingStack]:
    synthesized: Synthesized = request.getfixturevalue(stage)
    assert isinstance(synthesized.stack, PaymentPostingStack)
    return synthesized, synthesized.stack


def _id(construct: IConstruct, child: str | None = None) -> str:
    return logical_id(construct.node.find_child(child) if child else construct)


def _key_of(resource: Mapping[str, Any]) -> str | None:
    """The logical id of the key a resource is encrypted with, if it names one."""
    properties = resource.get("Properties", {})
    references = [properties.get(name) for name in KEY_PROPERTIES]
    references += [
        (replica.get("SSESpecification") or {}).get("KMSMasterKeyId")
        for replica in properties.get("Replicas", [])
    ]
    for reference in references:
        if isinstance(reference, dict) and "Fn::GetAtt" in reference:
            return str(reference["Fn::GetAtt"][0])
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(synthesized: Synthesized) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) of every identity policy in the template."""
    for policy in synthesized.template.find_resources("AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                yield role["Ref"], statement
    for role_id, role in synthesized.template.find_resources("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                yield role_id, statement


def _key_policy(synthesized: Synthesized, key: IConstruct) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = synthesized.resources[logical_id(key)]["Properties"][
        "KeyPolicy"
    ]["Statement"]
    return statements


def _via_service(statement: Mapping[str, Any]) -> str:
    """``dynamodb`` for ``{"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ...]]}``."""
    value = statement["Condition"]["StringEquals"]["kms:ViaService"]
    parts = value["Fn::Join"][1]
    assert parts[1:] == [{"Ref": "AWS::Region"}, ".amazonaws.com"], value
    return str(parts[0]).removesuffix(".")


def test_each_domain_has_its_own_rotated_key(stage: str, request: pytest.FixtureRequest) -> None:
    synthesized, stack = _stack(stage, request)
    keys = [stack.transactions_key, stack.ledger_key, stack.operations_key]
    assert len({logical_id(key) for key in keys}) == 3
    archive = stack.ingest.archive_key
    assert archive is not None
    assert logical_id(archive) not in {logical_id(k) for k in keys}
    synthesized.template.resource_count_is("AWS::KMS::Key", 4)
    synthesized.template.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_resource_is_encrypted_with_its_domains_key(
    stage: str, request: pytest.FixtureRequest
) -> None:
    """Each encrypted resource, classified by what it holds; a new one must be classified."""
    synthesized, stack = _stack(stage, request)
    ingest, enrichment, outcomes = stack.ingest, stack.enrichment, stack.screening_outcomes
    rules, poster = stack.rules_engine, stack.poster
    assert poster.expiry_sweeper is not None
    transactions, ledger = logical_id(stack.transactions_key), logical_id(stack.ledger_key)
    operations = logical_id(stack.operations_key)
    assert ingest.archive is not None
    assert ingest.archive_key is not None
    operations_topic = stack.operations_topic
    assert operations_topic is not None
    expected = {
        # Transaction data: the records, their stream, the bus and every queue of lifecycle
        # events (rule targets' dead-letter queues hold the events they could not deliver),
        # fingerprints and idempotency records, and the pipe's definition.
        _id(ingest, "TransactionsTable"): transactions,
        _id(ingest, "DedupTable"): transactions,
        _id(ingest, "QuarantineTable"): transactions,
        logical_id(ingest.event_bus): transactions,
        logical_id(ingest.pipe): transactions,
        logical_id(enrichment.dead_letter_queue): transactions,
        logical_id(outcomes.dead_letter_queue): transactions,
        logical_id(rules.dead_letter_queue): transactions,
        logical_id(poster.queue): transactions,
        logical_id(poster.dead_letter_queue): transactions,
        _id(poster, "IdempotencyTable"): transactions,
        # Transactions held for review, until a decision takes them.
        _id(rules, "PendingReviews"): transactions,
        # The archive keeps a year of events under a key no role may use.
        logical_id(ingest.archive): logical_id(ingest.archive_key),
        # The ledger: balances and postings, and the account directory (IBANs).
        _id(poster, "LedgerJournal"): ledger,
        _id(poster, "LedgerBalances"): ledger,
        _id(enrichment, "AccountsTable"): ledger,
        # The expiry sweeper's failed sweeps (their errors name pendings and accounts).
        logical_id(poster.expiry_sweeper.dead_letter_queue): ledger,
        # Operations: where a failed batch is in the stream, ids in notifications, logs.
        logical_id(ingest.dead_letter_queue): operations,
        logical_id(outcomes.notification_topic): operations,
        logical_id(rules.failure_topic): operations,
        # Alarm notifications: names of alarms and queues, no payment data.
        logical_id(operations_topic): operations,
    }
    for log_group in synthesized.template.find_resources("AWS::Logs::LogGroup"):
        expected[log_group] = operations

    found = {
        resource_id: key
        for resource_id, resource in synthesized.resources.items()
        if (key := _key_of(resource)) is not None
    }
    assert found == expected
    # The one queue without a customer key: where the bus puts what it cannot encrypt.
    unkeyed = {
        resource_id
        for resource_id, resource in synthesized.resources.items()
        if resource["Type"] == "AWS::SQS::Queue" and resource_id not in found
    }
    assert unkeyed == {_id(ingest, "BusDeadLetterQueue")}
    bus_dead_letters = synthesized.resources[_id(ingest, "BusDeadLetterQueue")]
    assert bus_dead_letters["Properties"]["SqsManagedSseEnabled"] is True


def test_every_log_group_is_encrypted_and_logs_may_use_the_key(
    stage: str, request: pytest.FixtureRequest
) -> None:
    synthesized, stack = _stack(stage, request)
    log_groups = synthesized.template.find_resources("AWS::Logs::LogGroup")
    # The four pipeline functions, the expiry sweeper, the pipe, the workflow, and in dev the
    # sample source.
    assert len(log_groups) == 7 + (stage == "dev")
    for log_group_id, log_group in log_groups.items():
        assert log_group["Properties"].get("KmsKeyId") is not None, log_group_id
    (statement,) = [
        s
        for s in _key_policy(synthesized, stack.operations_key)
        if "logs." in json.dumps(s.get("Principal"))
    ]
    assert statement["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert not any("*" in action for action in statement["Action"])
    # Log groups of this account and region only.
    condition = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert condition["Fn::Join"][1][-1] == ":log-group:*"
    assert {"Ref": "AWS::AccountId"} in condition["Fn::Join"][1]


def test_the_pipe_has_a_key_its_role_may_use_for_pipe_data_only(
    stage: str, request: pytest.FixtureRequest
) -> None:
    synthesized, stack = _stack(stage, request)
    pipe = synthesized.resources[logical_id(stack.ingest.pipe)]["Properties"]
    assert pipe["KmsKeyIdentifier"] == {"Fn::GetAtt": [logical_id(stack.transactions_key), "Arn"]}
    role = {"AWS": {"Fn::GetAtt": [logical_id(stack.ingest.pipe_role), "Arn"]}}
    for_role = [
        s for s in _key_policy(synthesized, stack.transactions_key) if s["Principal"] == role
    ]
    data = [s for s in for_role if s["Action"] != "kms:DescribeKey"]
    (statement,) = data
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # Either spelling of the pipe context key the Pipes guide uses; one must be present.
    assert statement["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:EncryptionContextKeys": ["aws:pipe:arn", "aws:pipes:arn"]
    }
    for key in ("aws:pipe:arn", "aws:pipes:arn"):
        pipes = statement["Condition"]["ArnLikeIfExists"][f"kms:EncryptionContext:{key}"]
        assert pipes["Fn::Join"][1][-1] == ":pipe/*"


def test_every_role_key_grant_names_the_service_it_is_used_through(
    stage: str, request: pytest.FixtureRequest
) -> None:
    synthesized, _ = _stack(stage, request)
    grants = [(role, s) for role, s in _role_statements(synthesized) if _is_key_grant(s)]
    assert grants
    for role, statement in grants:
        service = _via_service(statement)
        assert set(_as_list(statement["Action"])) <= ACTIONS_THROUGH[service], (role, statement)


def test_no_role_policy_has_a_wildcard_action(stage: str, request: pytest.FixtureRequest) -> None:
    synthesized, _ = _stack(stage, request)
    wildcards = [
        (role, action)
        for role, statement in _role_statements(synthesized)
        for action in _as_list(statement.get("Action", []))
        if "*" in action
    ]
    assert wildcards == []


def test_who_may_use_each_key(stage: str, request: pytest.FixtureRequest) -> None:
    """The blast radius of each key, by role: a change here is a change to ADR 0010."""
    synthesized, stack = _stack(stage, request)
    users: dict[str, set[str]] = defaultdict(set)
    for role, statement in _role_statements(synthesized):
        if _is_key_grant(statement):
            for resource in _as_list(statement["Resource"]):
                users[resource["Fn::GetAtt"][0]].add(role)
    pipe, dedup = logical_id(stack.ingest.pipe_role), _role(stack.ingest.dedup_function)
    enrichment, outcomes = (
        _role(stack.enrichment.function),
        _role(stack.screening_outcomes.function),
    )
    workflow, posting = _role(stack.rules_engine.state_machine), _role(stack.poster.function)
    source = {_role(stack.sample_source.function)} if stack.sample_source else set()
    assert stack.poster.expiry_sweeper is not None
    sweeper = _role(stack.poster.expiry_sweeper.function)
    assert dict(users) == {
        logical_id(stack.transactions_key): {
            pipe,
            dedup,
            enrichment,
            outcomes,
            workflow,  # the pending reviews, through DynamoDB
            posting,
            *source,
        },
        logical_id(stack.ledger_key): {enrichment, posting, sweeper, *source},
        logical_id(stack.operations_key): {pipe, outcomes, workflow},
    }


def test_eventbridge_may_use_a_key_only_for_this_bus_and_its_rules(
    stage: str, request: pytest.FixtureRequest
) -> None:
    """A statement for any source in the account would let EventBridge use the key for any
    bus or rule, which makes scoping the bus's statement moot."""
    synthesized, stack = _stack(stage, request)
    assert stack.ingest.archive_key is not None
    for key in (stack.transactions_key, stack.ingest.archive_key):
        for statement in _key_policy(synthesized, key):
            if statement["Principal"] != EVENTS or statement["Action"] == "kms:DescribeKey":
                continue
            conditions = {k for block in statement["Condition"].values() for k in block}
            assert conditions & {
                "aws:SourceArn",
                "kms:EncryptionContext:aws:events:event-bus:arn",
            }, statement
    for key in (stack.ledger_key, stack.operations_key):
        assert not [s for s in _key_policy(synthesized, key) if s["Principal"] == EVENTS]


def _is_key_grant(statement: Mapping[str, Any]) -> bool:
    return any(action.startswith("kms:") for action in _as_list(statement["Action"]))


def _role(grantable: Any) -> str:
    return logical_id(grantable.role)
