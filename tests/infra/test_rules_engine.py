"""RulesEngine on its own, in a bare stack with a bus: the workflow, its grants, its rule."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template
from constructs import IConstruct

from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_stack import RulesEngine
from payment_stack.rules_engine import DEFAULT_DEFINITION
from tests.infra.support import (
    ROOT,
    JsonValue,
    allowed_actions,
    bare_stack,
    get_att,
    logical_id,
    ref,
    role_statements,
    table_arn,
)

ASL_FILE = ROOT / "statemachine" / "business_rules.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
DEFAULT_SUBSTITUTIONS = {
    "HighValueThreshold": "1000000",
    "WatchedMccs": "7995,6051,4829",
    "MaxFxDeviationBps": "300",
    # The catalogue's names the built-in rules use, and no other.
    "RulesSource": EventSource.RULES.value,
    "TransactionRejected": EventName.TRANSACTION_REJECTED.value,
    "ForeignTransactionFound": EventName.FOREIGN_TRANSACTION_FOUND.value,
    "MerchantCategoryWarning": EventName.MERCHANT_CATEGORY_WARNING.value,
    "TransactionHeld": EventName.TRANSACTION_HELD.value,
    "TransactionApproved": EventName.TRANSACTION_APPROVED.value,
    "InquiryCompleted": EventName.INQUIRY_COMPLETED.value,
    "ReviewSource": EventSource.REVIEW.value,
    "ReviewDecided": EventName.REVIEW_DECIDED.value,
    "PendingReviewDays": "90",
}
# The smallest valid States Language document, with one substitution of its own.
USER_DEFINITION = {
    "Comment": "A team's own workflow for ${Team}",
    "StartAt": "Done",
    "States": {"Done": {"Type": "Succeed"}},
}


@dataclass(frozen=True)
class Built:
    """A RulesEngine with a template, and the state machine's properties in it."""

    stack: cdk.Stack
    bus: events.EventBus
    engine: RulesEngine
    template: Template

    @property
    def state_machine(self) -> Mapping[str, Any]:
        return _only(self.template, "AWS::StepFunctions::StateMachine")

    @property
    def role_id(self) -> str:
        return logical_id(self.engine.state_machine.role)

    @property
    def table(self) -> IConstruct:
        """The pending reviews table's resource (the construct exposes a view with its key)."""
        return self.engine.node.find_child("PendingReviews")

    def rule(self, rule: IConstruct | None) -> Mapping[str, Any]:
        assert rule is not None
        properties: Mapping[str, Any] = self.template.to_json()["Resources"][logical_id(rule)][
            "Properties"
        ]
        return properties


def _only(template: Template, resource_type: str) -> Mapping[str, Any]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    properties: Mapping[str, Any] = next(iter(resources.values()))["Properties"]
    return properties


def build(**props: Any) -> Built:
    stack = bare_stack()
    bus = events.EventBus(stack, "Bus")
    engine = RulesEngine(stack, "Rules", event_bus=bus, **props)
    return Built(stack, bus, engine, Template.from_stack(stack))


def as_text(value: JsonValue) -> str:
    """A substitution value as text: literals as they are, a ``Ref`` as a readable marker."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"Ref"}:
        return f"<Ref {value['Ref']}>"
    raise AssertionError(f"unexpected substitution value {value!r}")


def substitute(definition: str, substitutions: Mapping[str, JsonValue]) -> str:
    """What Step Functions does with DefinitionSubstitutions, on the raw definition text."""
    return PLACEHOLDER.sub(lambda match: as_text(substitutions[match.group(1)]), definition)


def replace_in_strings(document: JsonValue, values: Mapping[str, str]) -> JsonValue:
    """The parsed document with every ``${Name}`` inside a string replaced by ``values``."""
    if isinstance(document, dict):
        return {key: replace_in_strings(item, values) for key, item in document.items()}
    if isinstance(document, list):
        return [replace_in_strings(item, values) for item in document]
    if isinstance(document, str):
        return PLACEHOLDER.sub(lambda match: values[match.group(1)], document)
    return document


def task_parameters(document: Mapping[str, Any], resource: str) -> list[Mapping[str, Any]]:
    return [
        state["Parameters"]
        for state in document["States"].values()
        if state.get("Resource") == resource
    ]


@pytest.fixture(scope="module")
def built() -> Built:
    return build()


@pytest.fixture
def stack_and_bus() -> tuple[cdk.Stack, events.EventBus]:
    """A fresh stack for tests that construct but never synthesize."""
    stack = bare_stack()
    return stack, events.EventBus(stack, "Bus")


@pytest.mark.slow
class TestDefaults:
    def test_express_with_tracing(self, built: Built) -> None:
        assert built.state_machine["StateMachineType"] == "EXPRESS"
        assert built.state_machine["TracingConfiguration"] == {"Enabled": True}
        # Traced by sampling: 5 % of executions by default, no reservoir.
        rule = _only(built.template, "AWS::XRay::SamplingRule")["SamplingRule"]
        assert (rule["FixedRate"], rule["ReservoirSize"]) == (0.05, 0)

    def test_logs_errors_only_without_execution_data(self, built: Built) -> None:
        assert built.state_machine["LoggingConfiguration"] == {
            "Level": "ERROR",
            "IncludeExecutionData": False,
            "Destinations": [
                {"CloudWatchLogsLogGroup": {"LogGroupArn": get_att(built.engine.log_group)}}
            ],
        }
        built.template.resource_count_is("AWS::Logs::LogGroup", 1)
        built.template.has_resource(
            "AWS::Logs::LogGroup",
            {"Properties": {"RetentionInDays": 90}, "DeletionPolicy": "Retain"},
        )

    def test_definition_is_the_file_inlined(self, built: Built) -> None:
        assert DEFAULT_DEFINITION == ASL_FILE
        # A string, not an S3 location or an Fn::Join: the definition diffs in the template.
        assert built.state_machine["DefinitionString"] == ASL_FILE.read_text()
        assert "DefinitionS3Location" not in built.state_machine

    def test_substitutions(self, built: Built) -> None:
        assert built.state_machine["DefinitionSubstitutions"] == {
            "EventBusName": ref(built.bus),
            "FailureTopicArn": ref(built.engine.failure_topic),
            "PendingReviewsTableName": ref(built.table),
            **DEFAULT_SUBSTITUTIONS,
        }

    def test_every_placeholder_has_a_substitution(self, built: Built) -> None:
        used = set(PLACEHOLDER.findall(built.state_machine["DefinitionString"]))
        # A placeholder without a substitution would deploy as the literal text "${Name}".
        assert used == set(built.state_machine["DefinitionSubstitutions"])

    def test_substituted_definition_is_the_file_with_the_values(self, built: Built) -> None:
        properties = built.state_machine
        rendered = substitute(properties["DefinitionString"], properties["DefinitionSubstitutions"])
        document = json.loads(rendered)

        bus = f"<Ref {logical_id(built.bus)}>"
        topic = f"<Ref {logical_id(built.engine.failure_topic)}>"
        table = f"<Ref {logical_id(built.table)}>"
        expected = replace_in_strings(
            json.loads(ASL_FILE.read_text()),
            {
                "EventBusName": bus,
                "FailureTopicArn": topic,
                "PendingReviewsTableName": table,
                **DEFAULT_SUBSTITUTIONS,
            },
        )
        assert document == expected
        assert "${" not in rendered

        settings = document["States"]["LoadRuleSettings"]["Parameters"]
        assert settings == {
            "highValueThreshold.$": "States.StringToJson('1000000')",
            "watchedMccs.$": "States.StringSplit('7995,6051,4829', ',')",
            "maxFxDeviationBps.$": "States.StringToJson('300')",
            "pendingReviewDays.$": "States.StringToJson('90')",
        }
        put_events = task_parameters(document, "arn:aws:states:::events:putEvents")
        assert put_events, "expected the outcomes to be put on the bus"
        assert {entry["EventBusName"] for p in put_events for entry in p["Entries"]} == {bus}
        publish = task_parameters(document, "arn:aws:states:::sns:publish")
        assert publish, "expected failures to be published to the topic"
        assert {p["TopicArn"] for p in publish} == {topic}
        reviews = [
            parameters
            for action in ("putItem", "updateItem", "deleteItem")
            for parameters in task_parameters(document, f"arn:aws:states:::dynamodb:{action}")
        ]
        assert len(reviews) == 3
        assert {p["TableName"] for p in reviews} == {table}

    def test_role_puts_events_on_the_bus_and_publishes_to_the_topic(self, built: Built) -> None:
        assert allowed_actions(built.template, built.role_id, get_att(built.bus)) == {
            "events:PutEvents"
        }
        assert allowed_actions(built.template, built.role_id, ref(built.engine.failure_topic)) == {
            "sns:Publish"
        }

    def test_role_has_nothing_broader_than_needed(self, built: Built) -> None:
        statements = role_statements(built.template, built.role_id)
        assert statements
        actions = {action for statement in statements for action in statement.actions}
        assert not {"events:*", "sns:*", "*"} & actions
        events_or_sns = {a for a in actions if a.split(":")[0] in ("events", "sns")}
        assert events_or_sns == {"events:PutEvents", "sns:Publish"}
        for statement in statements:
            if "*" in statement.resources:
                # Only log delivery and X-Ray, which accept no narrower resource.
                assert all(a.split(":")[0] in ("logs", "xray") for a in statement.actions), (
                    statement
                )

    def test_rule_matches_transaction_enriched_from_enrichment(self, built: Built) -> None:
        rule = built.rule(built.engine.rule)
        assert rule["EventBusName"] == ref(built.bus)
        assert rule["EventPattern"] == {
            "source": [EventSource.ENRICHMENT],
            "detail-type": [EventName.TRANSACTION_ENRICHED],
        }

    def test_rule_target_is_the_state_machine_with_dead_letter_queue_and_retries(
        self, built: Built
    ) -> None:
        (target,) = built.rule(built.engine.rule)["Targets"]
        assert target["Arn"] == ref(built.engine.state_machine)
        assert target["DeadLetterConfig"] == {"Arn": get_att(built.engine.dead_letter_queue)}
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": 8,
            "MaximumEventAgeInSeconds": 6 * 3600,
        }
        events_role = target["RoleArn"]["Fn::GetAtt"][0]
        assert allowed_actions(built.template, events_role, ref(built.engine.state_machine)) == {
            "states:StartExecution"
        }

    def test_failure_topic_is_encrypted_and_tls_only(self, built: Built) -> None:
        # The failure topic, and the operations topic of the engine's alarms.
        built.template.resource_count_is("AWS::SNS::Topic", 2)
        built.template.has_resource_properties(
            "AWS::SNS::Topic", {"KmsMasterKeyId": get_att(built.engine.encryption_key)}
        )
        built.template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {
                "Topics": [ref(built.engine.failure_topic)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Principal": "*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )

    def test_own_key_is_rotated_and_lets_eventbridge_dead_letter(self, built: Built) -> None:
        built.template.has_resource_properties(
            "AWS::KMS::Key",
            {
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Allow",
                                    "Principal": {"Service": "events.amazonaws.com"},
                                    "Condition": {
                                        "StringEquals": {
                                            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
                                        }
                                    },
                                }
                            )
                        ]
                    )
                },
            },
        )
        built.template.has_resource_properties(
            "AWS::SQS::Queue", {"KmsMasterKeyId": get_att(built.engine.encryption_key)}
        )

    def test_metric_failed_executions(self, built: Built) -> None:
        metric = built.engine.metric_failed_executions()
        assert isinstance(metric, cloudwatch.Metric)
        assert metric.metric_name == "ExecutionsFailed"
        assert metric.namespace == "AWS/States"
        assert metric.period.to_seconds() == 60
        assert built.stack.resolve(metric.dimensions) == {
            "StateMachineArn": ref(built.engine.state_machine)
        }
        custom = built.engine.metric_failed_executions(period=Duration.minutes(5))
        assert custom.period.to_seconds() == 300


@pytest.mark.slow
class TestReviewDecisions:
    def test_pending_reviews_are_kept_encrypted_with_a_time_to_live_and_recovery(
        self, built: Built
    ) -> None:
        resource = built.template.to_json()["Resources"][logical_id(built.table)]
        assert resource["Type"] == "AWS::DynamoDB::GlobalTable"
        assert resource["DeletionPolicy"] == "Retain"
        properties = resource["Properties"]
        assert properties["KeySchema"] == [{"AttributeName": "transactionId", "KeyType": "HASH"}]
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": "expiresAt",
            "Enabled": True,
        }
        [replica] = properties["Replicas"]
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert replica["DeletionProtectionEnabled"] is True
        assert replica["SSESpecification"] == {
            "KMSMasterKeyId": get_att(built.engine.encryption_key)
        }

    def test_the_workflow_may_make_the_pending_review_calls_of_its_definition_only(
        self, built: Built
    ) -> None:
        # The calls the definition's DynamoDB tasks make (arn:aws:states:::dynamodb:getItem is
        # dynamodb:GetItem), not a list kept by hand beside it.
        definition = json.loads(DEFAULT_DEFINITION.read_text())
        called = {
            "dynamodb:" + state["Resource"].rsplit(":", 1)[1][0].upper()
            + state["Resource"].rsplit(":", 1)[1][1:]
            for state in definition["States"].values()
            if state.get("Resource", "").startswith("arn:aws:states:::dynamodb:")
        }  # fmt: skip
        assert called == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"}
        assert allowed_actions(built.template, built.role_id, table_arn(built.table)) == called
        dynamodb = [
            statement
            for statement in role_statements(built.template, built.role_id)
            if any(action.startswith("dynamodb:") for action in statement.actions)
        ]
        assert [statement.resources for statement in dynamodb] == [(table_arn(built.table),)]
        # The table's key, only as DynamoDB uses it for the workflow.
        built.template.has_resource_properties(
            "AWS::IAM::Policy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            {
                                "Action": "kms:Decrypt",
                                "Effect": "Allow",
                                "Resource": get_att(built.engine.encryption_key),
                                "Condition": {
                                    "StringEquals": {"kms:ViaService": Match.any_value()}
                                },
                            }
                        ]
                    )
                },
                "Roles": [{"Ref": built.role_id}],
            },
        )

    def test_review_decisions_start_the_same_workflow_as_enriched_transactions(
        self, built: Built
    ) -> None:
        review = built.rule(built.engine.review_rule)
        assert review["EventBusName"] == ref(built.bus)
        assert review["EventPattern"] == {
            "source": [EventSource.REVIEW],
            "detail-type": [EventName.REVIEW_DECIDED],
        }
        # The same target: workflow, dead-letter queue, retries and role.
        assert review["Targets"] == built.rule(built.engine.rule)["Targets"]

    def test_grant_review_decisions_allows_review_decisions_and_nothing_else(self) -> None:
        stack = bare_stack()
        bus = events.EventBus(stack, "Bus")
        engine = RulesEngine(stack, "Rules", event_bus=bus)
        case_tool = iam.Role(stack, "CaseTool", assumed_by=iam.AccountRootPrincipal())

        engine.grant_review_decisions(case_tool)

        template = Template.from_stack(stack)
        [statement] = [
            s
            for policy in template.find_resources("AWS::IAM::Policy").values()
            if policy["Properties"]["Roles"] == [ref(case_tool)]
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert statement == {
            "Action": "events:PutEvents",
            "Effect": "Allow",
            "Resource": get_att(bus),
            "Condition": {
                "StringEquals": {
                    "events:source": [EventSource.REVIEW.value],
                    "events:detail-type": [EventName.REVIEW_DECIDED.value],
                }
            },
        }

    def test_pending_review_retention_is_substituted_in_days(self) -> None:
        built = build(pending_review_retention=Duration.days(7))
        assert built.state_machine["DefinitionSubstitutions"]["PendingReviewDays"] == "7"

    def test_an_own_definition_that_names_no_table_takes_no_decisions(self, tmp_path: Path) -> None:
        definition = tmp_path / "own.asl.json"
        definition.write_text(json.dumps(USER_DEFINITION))
        built = build(definition_file=definition, definition_substitutions={"Team": "cards"})

        assert built.engine.pending_reviews_table is None
        assert built.engine.review_rule is None
        built.template.resource_count_is("AWS::DynamoDB::GlobalTable", 0)
        built.template.resource_count_is("AWS::Events::Rule", 1)
        with pytest.raises(ValueError, match=r"needs a definition that takes review decisions"):
            built.engine.grant_review_decisions(iam.AccountRootPrincipal())

    def test_an_own_definition_that_names_the_table_gets_it(self, tmp_path: Path) -> None:
        definition = tmp_path / "own.asl.json"
        definition.write_text(
            json.dumps(
                {
                    "StartAt": "Done",
                    "States": {
                        "Done": {
                            "Type": "Pass",
                            "Result": "${PendingReviewsTableName}",
                            "End": True,
                        }
                    },
                }
            )
        )
        built = build(definition_file=definition)

        assert built.engine.pending_reviews_table is not None
        assert built.engine.review_rule is not None
        substitutions = built.state_machine["DefinitionSubstitutions"]
        assert substitutions["PendingReviewsTableName"] == ref(built.table)


@pytest.mark.slow
class TestOptions:
    def test_standard_type(self) -> None:
        built = build(state_machine_type=sfn.StateMachineType.STANDARD)
        assert built.state_machine["StateMachineType"] == "STANDARD"

    def test_custom_rule_settings_are_substituted(self) -> None:
        built = build(
            high_value_threshold=250_000,
            watched_merchant_categories=["7995", "5933"],
            max_fx_deviation_bps=150,
        )
        substitutions = built.state_machine["DefinitionSubstitutions"]
        assert substitutions["HighValueThreshold"] == "250000"
        assert substitutions["WatchedMccs"] == "7995,5933"
        assert substitutions["MaxFxDeviationBps"] == "150"

    def test_own_definition_file(self, tmp_path: Path) -> None:
        definition = tmp_path / "own.asl.json"
        definition.write_text(json.dumps(USER_DEFINITION, indent=2))
        built = build(definition_file=definition, definition_substitutions={"Team": "cards"})
        assert built.state_machine["DefinitionString"] == definition.read_text()
        substitutions = built.state_machine["DefinitionSubstitutions"]
        assert substitutions["Team"] == "cards"
        rendered = json.loads(substitute(built.state_machine["DefinitionString"], substitutions))
        assert rendered["Comment"] == "A team's own workflow for cards"

    def test_own_definition_gets_the_catalogues_names_it_uses(self, tmp_path: Path) -> None:
        definition = tmp_path / "own.asl.json"
        own = {
            "StartAt": "Done",
            "States": {
                "Done": {
                    "Type": "Pass",
                    "Result": {"source": "${ReviewSource}", "name": "${InquiryCompleted}"},
                    "End": True,
                }
            },
        }
        definition.write_text(json.dumps(own))
        built = build(definition_file=definition)
        substitutions = built.state_machine["DefinitionSubstitutions"]
        assert substitutions["ReviewSource"] == EventSource.REVIEW
        assert substitutions["InquiryCompleted"] == EventName.INQUIRY_COMPLETED
        # Only the names the definition uses reach the template.
        assert not set(substitutions) & {"TransactionApproved", "RulesSource"}

    def test_existing_failure_topic_is_used(self) -> None:
        stack = bare_stack()
        bus = events.EventBus(stack, "Bus")
        topic = sns.Topic(stack, "Existing")
        engine = RulesEngine(stack, "Rules", event_bus=bus, failure_topic=topic)
        template = Template.from_stack(stack)

        assert engine.failure_topic is topic
        # The one given, and the operations topic of the engine's alarms: no failure topic.
        template.resource_count_is("AWS::SNS::Topic", 2)
        assert engine.alarm_topic is not topic
        state_machine = _only(template, "AWS::StepFunctions::StateMachine")
        assert state_machine["DefinitionSubstitutions"]["FailureTopicArn"] == ref(topic)
        role_id = logical_id(engine.state_machine.role)
        assert allowed_actions(template, role_id, ref(topic)) == {"sns:Publish"}


class TestValidation:
    def test_missing_definition_file(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], tmp_path: Path
    ) -> None:
        stack, bus = stack_and_bus
        missing = tmp_path / "missing.asl.json"
        with pytest.raises(ValueError, match=r"no definition file at .*missing\.asl\.json"):
            RulesEngine(stack, "Rules", event_bus=bus, definition_file=missing)

    def test_definition_that_is_not_json(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], tmp_path: Path
    ) -> None:
        stack, bus = stack_and_bus
        broken = tmp_path / "broken.asl.json"
        # An unquoted substitution: the mistake the error message warns about.
        broken.write_text('{"StartAt": "Hold", "Threshold": ${HighValueThreshold}}')
        with pytest.raises(
            ValueError, match=r"broken\.asl\.json is not valid JSON.*substitutions inside strings"
        ):
            RulesEngine(stack, "Rules", event_bus=bus, definition_file=broken)

    @pytest.mark.parametrize(
        ("props", "message"),
        [
            pytest.param(
                {"high_value_threshold": 0},
                r"high_value_threshold must be a positive amount in minor units, got 0",
                id="threshold-0",
            ),
            pytest.param(
                {"watched_merchant_categories": ["7995", "79A5"]},
                r"merchant category codes are four digits; got 79A5$",
                id="mcc-79A5",
            ),
            pytest.param(
                {"max_fx_deviation_bps": 10_001},
                r"max_fx_deviation_bps must be between 0 and 10000, got 10001",
                id="fx-10001",
            ),
            pytest.param(
                {"max_fx_deviation_bps": -1},
                r"max_fx_deviation_bps must be between 0 and 10000, got -1",
                id="fx-negative",
            ),
        ],
    )
    def test_invalid_rule_settings_are_refused_naming_the_problem(
        self,
        stack_and_bus: tuple[cdk.Stack, events.EventBus],
        props: dict[str, Any],
        message: str,
    ) -> None:
        stack, bus = stack_and_bus
        with pytest.raises(ValueError, match=message):
            RulesEngine(stack, "Rules", event_bus=bus, **props)

    @pytest.mark.parametrize(
        "props",
        [
            pytest.param({"high_value_threshold": 1}, id="threshold-1"),
            pytest.param({"max_fx_deviation_bps": 0}, id="fx-0"),
            pytest.param({"max_fx_deviation_bps": 10_000}, id="fx-10000"),
            pytest.param({"watched_merchant_categories": []}, id="no-watched-mccs"),
            pytest.param({"pending_review_retention": Duration.days(1)}, id="review-1-day"),
            pytest.param({"pending_review_retention": Duration.days(999)}, id="review-999-days"),
        ],
    )
    def test_boundary_settings_are_accepted(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], props: dict[str, Any]
    ) -> None:
        stack, bus = stack_and_bus
        RulesEngine(stack, "Rules", event_bus=bus, **props)

    @pytest.mark.parametrize(
        "retention",
        [Duration.hours(36), Duration.days(0), Duration.days(1_000)],
        ids=["a-day-and-a-half", "no-days", "1000-days"],
    )
    def test_a_pending_review_retention_outside_whole_days_1_to_999_is_refused(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], retention: Duration
    ) -> None:
        stack, bus = stack_and_bus
        with pytest.raises(ValueError, match=r"pending_review_retention must be whole days"):
            RulesEngine(stack, "Rules", event_bus=bus, pending_review_retention=retention)

    def test_watched_categories_as_a_string_are_refused(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus]
    ) -> None:
        stack, bus = stack_and_bus
        with pytest.raises(ValueError, match=r"list of codes.*not a string"):
            RulesEngine(stack, "Rules", event_bus=bus, watched_merchant_categories="7995")

    def test_built_in_substitutions_cannot_be_overridden(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus]
    ) -> None:
        stack, bus = stack_and_bus
        with pytest.raises(ValueError, match=r"may not replace \['HighValueThreshold'\]"):
            RulesEngine(
                stack,
                "Rules",
                event_bus=bus,
                definition_substitutions={"HighValueThreshold": "abc"},
            )

    @pytest.mark.parametrize("name", ["TransactionApproved", "RulesSource"])
    def test_the_catalogues_names_cannot_be_overridden(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], name: str
    ) -> None:
        # Another value would publish an event the catalogue does not know by that name.
        stack, bus = stack_and_bus
        with pytest.raises(ValueError, match=rf"may not replace \['{name}'\].*event catalogue"):
            RulesEngine(stack, "Rules", event_bus=bus, definition_substitutions={name: "x"})

    def test_a_misspelt_event_name_is_refused(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], tmp_path: Path
    ) -> None:
        stack, bus = stack_and_bus
        own = tmp_path / "own.asl.json"
        own.write_text(
            json.dumps(
                {
                    "StartAt": "P",
                    "States": {
                        "P": {"Type": "Pass", "Result": "${TransactionAproved}", "End": True}
                    },
                }
            )
        )
        with pytest.raises(ValueError, match=r"uses \['TransactionAproved'\] with no substitution"):
            RulesEngine(stack, "Rules", event_bus=bus, definition_file=own)

    def test_a_placeholder_without_substitution_is_refused(
        self, stack_and_bus: tuple[cdk.Stack, events.EventBus], tmp_path: Path
    ) -> None:
        stack, bus = stack_and_bus
        own = tmp_path / "own.asl.json"
        own.write_text(
            json.dumps(
                {
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "Result": "${Region}", "End": True}},
                }
            )
        )
        with pytest.raises(ValueError, match=r"uses \['Region'\] with no substitution"):
            RulesEngine(stack, "Rules", event_bus=bus, definition_file=own)
        RulesEngine(
            stack,
            "Accepted",
            event_bus=bus,
            definition_file=own,
            definition_substitutions={"Region": "eu-west-1"},
        )
