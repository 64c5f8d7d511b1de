"""EnrichmentProcessor and ScreeningOutcomes, in a bare stack with a bus and a key.

Together their three rules split ``TransactionAuthorized`` by the screening result: valid first
sightings to enrichment, flagged duplicates and malformed records to the outcomes function.
A wrong filter would, for instance, enrich (and so post) a duplicate.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match, Template

from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_stack import EnrichmentProcessor, ScreeningOutcomes
from tests.infra.support import (
    JsonValue,
    all_allowed_actions,
    allowed_actions,
    bare_stack,
    get_att,
    logical_id,
    ref,
    table_arn,
)

pytestmark = pytest.mark.slow

INGEST_SOURCE = EventSource.INGEST.value
TRANSACTION_AUTHORIZED = EventName.TRANSACTION_AUTHORIZED.value
IMPORTED_KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMPORTED_KEY_WARNING = "payment-posting:ImportedKeyPolicy"
TARGET_RETRY_POLICY = {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 6 * 3600}


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    bus: events.EventBus
    key: kms.Key
    enrichment: EnrichmentProcessor
    outcomes: ScreeningOutcomes
    template: Template

    @property
    def accounts_table(self) -> cdk.CfnResource:
        """The table's CFN resource (the processor exposes an imported view that knows the key)."""
        resource = self.enrichment.node.find_child("AccountsTable").node.default_child
        assert isinstance(resource, cdk.CfnResource)
        return resource

    def rule(self, rule: events.Rule) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = self.template.to_json()["Resources"][logical_id(rule)][
            "Properties"
        ]
        return properties

    def role_id(self, function: lambda_.IFunction) -> str:
        assert function.role is not None
        return logical_id(function.role)


@pytest.fixture(scope="module")
def built() -> Built:
    stack = bare_stack()
    bus = events.EventBus(stack, "Bus")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    enrichment = EnrichmentProcessor(stack, "Enrichment", event_bus=bus, encryption_key=key)
    outcomes = ScreeningOutcomes(stack, "Outcomes", event_bus=bus, encryption_key=key)
    return Built(stack, bus, key, enrichment, outcomes, Template.from_stack(stack))


def _pattern(screening: Mapping[str, list[bool]]) -> dict[str, Any]:
    return {
        "source": [INGEST_SOURCE],
        "detail-type": [TRANSACTION_AUTHORIZED],
        "detail": {"screening": dict(screening)},
    }


def _matches(pattern: JsonValue, event: JsonValue) -> bool:
    """EventBridge matching for the pattern subset used here: fields and lists of literals."""
    if isinstance(pattern, list):
        # Typed equality: in EventBridge, true is not 1 and false is not 0.
        return any(type(value) is type(event) and value == event for value in pattern)
    if not isinstance(pattern, Mapping) or not isinstance(event, Mapping):
        return False
    return all(key in event and _matches(value, event[key]) for key, value in pattern.items())


def _authorized(valid: bool, duplicate: bool | None) -> dict[str, Any]:
    screening: dict[str, Any] = {"valid": valid}
    if duplicate is not None:
        screening["duplicate"] = duplicate
    return {
        "source": INGEST_SOURCE,
        "detail-type": TRANSACTION_AUTHORIZED,
        "detail": {"transactionId": "t-1", "screening": screening},
    }


class TestRules:
    def test_enrichment_takes_valid_first_sightings_only(self, built: Built) -> None:
        rule = built.rule(built.enrichment.rule)
        assert rule["EventBusName"] == ref(built.bus)
        assert rule["EventPattern"] == _pattern({"valid": [True], "duplicate": [False]})

    def test_duplicates_rule_takes_valid_duplicates_only(self, built: Built) -> None:
        rule = built.rule(built.outcomes.duplicates_rule)
        assert rule["EventBusName"] == ref(built.bus)
        assert rule["EventPattern"] == _pattern({"valid": [True], "duplicate": [True]})

    def test_quarantine_rule_takes_invalid_records(self, built: Built) -> None:
        rule = built.rule(built.outcomes.quarantine_rule)
        assert rule["EventBusName"] == ref(built.bus)
        assert rule["EventPattern"] == _pattern({"valid": [False]})

    @pytest.mark.parametrize(
        ("valid", "duplicate", "expected"),
        [
            (True, False, "enrichment"),
            (True, True, "duplicates"),
            (False, None, "quarantine"),  # a malformed record has no duplicate verdict
            (False, False, "quarantine"),
            (False, True, "quarantine"),
            (True, None, None),  # not a state the ingest pipe publishes: nobody takes it
        ],
    )
    def test_every_screening_result_reaches_exactly_one_processor(
        self, built: Built, valid: bool, duplicate: bool | None, expected: str | None
    ) -> None:
        rules = {
            "enrichment": built.enrichment.rule,
            "duplicates": built.outcomes.duplicates_rule,
            "quarantine": built.outcomes.quarantine_rule,
        }
        event = _authorized(valid, duplicate)
        matched = {
            name
            for name, rule in rules.items()
            if _matches(built.rule(rule)["EventPattern"], event)
        }
        assert matched == ({expected} if expected else set())

    def test_rules_do_not_match_other_sources_or_types(self, built: Built) -> None:
        for rule in (
            built.enrichment.rule,
            built.outcomes.duplicates_rule,
            built.outcomes.quarantine_rule,
        ):
            pattern = built.rule(rule)["EventPattern"]
            for source, detail_type in itertools.product(
                [INGEST_SOURCE, EventSource.ENRICHMENT.value], [TRANSACTION_AUTHORIZED, "Other"]
            ):
                if (source, detail_type) == (INGEST_SOURCE, TRANSACTION_AUTHORIZED):
                    continue
                for screening in ({"valid": True, "duplicate": False}, {"valid": False}):
                    event = {
                        "source": source,
                        "detail-type": detail_type,
                        "detail": {"screening": screening},
                    }
                    assert not _matches(pattern, event), (rule.node.path, event)


class TestDelivery:
    @pytest.mark.parametrize("rule_name", ["enrichment", "duplicates", "quarantine"])
    def test_lambda_target_has_dead_letter_queue_and_retry_policy(
        self, built: Built, rule_name: str
    ) -> None:
        rule, function, queue = {
            "enrichment": (
                built.enrichment.rule,
                built.enrichment.function,
                built.enrichment.dead_letter_queue,
            ),
            "duplicates": (
                built.outcomes.duplicates_rule,
                built.outcomes.function,
                built.outcomes.dead_letter_queue,
            ),
            "quarantine": (
                built.outcomes.quarantine_rule,
                built.outcomes.function,
                built.outcomes.dead_letter_queue,
            ),
        }[rule_name]
        (target,) = built.rule(rule)["Targets"]
        assert target["Arn"] == get_att(function)
        assert target["DeadLetterConfig"] == {"Arn": get_att(queue)}
        assert target["RetryPolicy"] == TARGET_RETRY_POLICY

    def test_one_event_invoke_config_per_function(self, built: Built) -> None:
        built.template.resource_count_is("AWS::Lambda::EventInvokeConfig", 2)
        for function in (built.enrichment.function, built.outcomes.function):
            # ScreeningOutcomes has two rules but one function: still one config.
            built.template.resource_properties_count_is(
                "AWS::Lambda::EventInvokeConfig", {"FunctionName": ref(function)}, 1
            )

    @pytest.mark.parametrize("processor", ["enrichment", "outcomes"])
    def test_function_failures_go_to_the_dead_letter_queue_after_two_retries(
        self, built: Built, processor: str
    ) -> None:
        owner: EnrichmentProcessor | ScreeningOutcomes = getattr(built, processor)
        built.template.has_resource_properties(
            "AWS::Lambda::EventInvokeConfig",
            {
                "FunctionName": ref(owner.function),
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 2,
                "MaximumEventAgeInSeconds": 6 * 3600,
                "DestinationConfig": {
                    "OnFailure": {"Destination": get_att(owner.dead_letter_queue)}
                },
            },
        )

    @pytest.mark.parametrize("processor", ["enrichment", "outcomes"])
    def test_dead_letter_queue_is_encrypted_tls_only_and_open_to_its_rules(
        self, built: Built, processor: str
    ) -> None:
        owner: EnrichmentProcessor | ScreeningOutcomes = getattr(built, processor)
        rules = (
            [owner.rule]
            if isinstance(owner, EnrichmentProcessor)
            else [owner.duplicates_rule, owner.quarantine_rule]
        )
        queue = built.template.to_json()["Resources"][logical_id(owner.dead_letter_queue)]
        assert queue["Properties"]["KmsMasterKeyId"] == get_att(built.key)
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
        built.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [ref(owner.dead_letter_queue)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            ),
                            *(
                                Match.object_like(
                                    {
                                        "Effect": "Allow",
                                        "Action": "sqs:SendMessage",
                                        "Principal": {"Service": "events.amazonaws.com"},
                                        "Condition": {
                                            "ArnEquals": {"aws:SourceArn": get_att(rule)}
                                        },
                                    }
                                )
                                for rule in rules
                            ),
                        ]
                    )
                },
            },
        )


class TestGrants:
    def test_enrichment_reads_accounts_by_key_only(self, built: Built) -> None:
        role_id = built.role_id(built.enrichment.function)
        on_table = allowed_actions(built.template, role_id, table_arn(built.accounts_table))
        assert on_table == {"dynamodb:GetItem"}
        everything = all_allowed_actions(built.template, role_id)
        assert {a for a in everything if a.startswith("dynamodb:")} == {"dynamodb:GetItem"}
        forbidden = {"dynamodb:Scan", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:*"}
        assert not everything & forbidden

    def test_enrichment_puts_events_on_the_bus(self, built: Built) -> None:
        role_id = built.role_id(built.enrichment.function)
        assert allowed_actions(built.template, role_id, get_att(built.bus)) == {"events:PutEvents"}
        assert not {a for a in all_allowed_actions(built.template, role_id) if "sns:" in a}

    def test_outcomes_publishes_to_the_topic_and_puts_events(self, built: Built) -> None:
        role_id = built.role_id(built.outcomes.function)
        topic = ref(built.outcomes.notification_topic)
        assert allowed_actions(built.template, role_id, topic) == {"sns:Publish"}
        assert allowed_actions(built.template, role_id, get_att(built.bus)) == {"events:PutEvents"}
        everything = all_allowed_actions(built.template, role_id)
        assert not {a for a in everything if a.startswith("dynamodb:")}
        assert not {"sns:*", "events:*"} & everything
        # Publishing to an encrypted topic (and writing the failure destination) needs a data
        # key: those two actions, nothing with a wildcard.
        on_key = allowed_actions(built.template, role_id, get_att(built.key))
        assert on_key == {"kms:GenerateDataKey", "kms:Decrypt"}

    def test_functions_are_invoked_by_their_rules_only(self, built: Built) -> None:
        for function, rules in (
            (built.enrichment.function, [built.enrichment.rule]),
            (
                built.outcomes.function,
                [built.outcomes.duplicates_rule, built.outcomes.quarantine_rule],
            ),
        ):
            permissions = built.template.find_resources(
                "AWS::Lambda::Permission", {"Properties": {"FunctionName": get_att(function)}}
            )
            sources = [p["Properties"]["SourceArn"] for p in permissions.values()]
            assert sorted(map(str, sources)) == sorted(str(get_att(rule)) for rule in rules)
            for permission in permissions.values():
                assert permission["Properties"]["Principal"] == "events.amazonaws.com"


class TestResources:
    def test_function_environments(self, built: Built) -> None:
        built.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "payment_posting_functions.handlers.enrich.handler",
                "Environment": {
                    "Variables": Match.object_like(
                        {
                            "ACCOUNTS_TABLE_NAME": ref(built.accounts_table),
                            "EVENT_BUS_NAME": ref(built.bus),
                            "POWERTOOLS_SERVICE_NAME": "enrichment",
                        }
                    )
                },
                "TracingConfig": {"Mode": "PassThrough"},
            },
        )
        built.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "payment_posting_functions.handlers.screening_outcomes.handler",
                "Environment": {
                    "Variables": Match.object_like(
                        {
                            "EVENT_BUS_NAME": ref(built.bus),
                            "NOTIFICATION_TOPIC_ARN": ref(built.outcomes.notification_topic),
                            "POWERTOOLS_SERVICE_NAME": "screening-outcomes",
                        }
                    )
                },
                "TracingConfig": {"Mode": "PassThrough"},
            },
        )
        built.template.resource_count_is("AWS::Lambda::Function", 2)

    def test_accounts_table_is_encrypted_with_the_key(self, built: Built) -> None:
        properties = built.template.to_json()["Resources"][logical_id(built.accounts_table)][
            "Properties"
        ]
        assert properties["KeySchema"] == [{"AttributeName": "accountId", "KeyType": "HASH"}]
        assert properties["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
        (replica,) = properties["Replicas"]
        assert replica["SSESpecification"] == {"KMSMasterKeyId": get_att(built.key)}
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        table = built.enrichment.accounts_table
        assert isinstance(table, dynamodb.TableBaseV2)
        assert table.encryption_key is built.key
        assert built.stack.resolve(table.table_name) == ref(built.accounts_table)

    def test_notification_topic_is_encrypted_and_tls_only(self, built: Built) -> None:
        topic = built.outcomes.notification_topic
        assert isinstance(topic, sns.Topic)
        built.template.has_resource_properties(
            "AWS::SNS::Topic", {"KmsMasterKeyId": get_att(built.key)}
        )
        built.template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {
                "Topics": [ref(topic)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )

    def test_key_policy_lets_eventbridge_dead_letter_for_the_rules_of_the_bus(
        self, built: Built
    ) -> None:
        key = built.template.to_json()["Resources"][logical_id(built.key)]
        statements = [
            statement
            for statement in key["Properties"]["KeyPolicy"]["Statement"]
            if statement.get("Principal") == {"Service": "events.amazonaws.com"}
        ]
        # Both processors add it; the key policy holds it once.
        (statement,) = statements
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        # Not any source of the account: the rules of this bus (arn:...:rule/<bus>/*).
        source = statement["Condition"]["ArnLike"]["aws:SourceArn"]
        bus = built.bus.node.default_child
        assert isinstance(bus, events.CfnEventBus)
        assert source["Fn::Join"][1][-1] == f":rule/{built.stack.resolve(bus.name)}/*"

    def test_owned_key_gives_no_imported_key_warning(self, built: Built) -> None:
        Annotations.from_stack(built.stack).has_no_warning(
            "*", Match.string_like_regexp(IMPORTED_KEY_WARNING)
        )

    def test_attributes(self, built: Built) -> None:
        assert isinstance(built.enrichment.function, lambda_.Function)
        assert isinstance(built.enrichment.dead_letter_queue, sqs.Queue)
        assert isinstance(built.outcomes.function, lambda_.Function)
        assert isinstance(built.outcomes.dead_letter_queue, sqs.Queue)
        assert built.enrichment.dead_letter_queue is not built.outcomes.dead_letter_queue


def test_imported_key_is_warned_about() -> None:
    stack = bare_stack()
    bus = events.EventBus(stack, "Bus")
    key = kms.Key.from_key_arn(stack, "Imported", IMPORTED_KEY_ARN)
    EnrichmentProcessor(stack, "Enrichment", event_bus=bus, encryption_key=key)
    ScreeningOutcomes(stack, "Outcomes", event_bus=bus, encryption_key=key)
    annotations = Annotations.from_stack(stack)

    warning = Match.string_like_regexp(f"events.amazonaws.com.*{IMPORTED_KEY_WARNING}")
    for path in ("/Bare/Enrichment", "/Bare/Outcomes"):
        annotations.has_warning(path, warning)
    assert len(annotations.find_warning("*", warning)) == 2
    Template.from_stack(stack).resource_count_is("AWS::KMS::Key", 0)
