"""PaymentPostingStack per stage, and the stage settings read from cdk.json."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match

from payment_stack import PaymentPostingStack, StageConfig
from payment_stack.config import STAGES_CONTEXT_KEY
from tests.infra.support import Synthesized, make_app, ref, stage_values

# Resources that hold payment data or decrypt it: what "retain" must keep.
DATA_RESOURCE_TYPES = [
    "AWS::DynamoDB::GlobalTable",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",  # failed batches wait here for redrive
    "AWS::Logs::LogGroup",
]
SAMPLE_SOURCE_HANDLER = "handlers.source.handler"


@pytest.mark.slow
class TestDevStage:
    def test_has_the_sample_source_function(
        self, dev: Synthesized, dev_stack: PaymentPostingStack
    ) -> None:
        assert dev_stack.sample_source is not None
        dev.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": SAMPLE_SOURCE_HANDLER,
                "Environment": {
                    "Variables": Match.object_like(
                        {
                            "TRANSACTIONS_TABLE_NAME": ref(
                                dev_stack.ingest.node.find_child("TransactionsTable")
                            )
                        }
                    )
                },
            },
        )
        dev.template.has_output(
            "SampleSourceFunctionName", {"Value": ref(dev_stack.sample_source.function)}
        )

    def test_sample_source_may_write_transactions(
        self, dev: Synthesized, dev_stack: PaymentPostingStack
    ) -> None:
        assert dev_stack.sample_source is not None
        policy = dev.template.find_resources(
            "AWS::IAM::Policy",
            {"Properties": {"Roles": [ref(dev_stack.sample_source.role)]}},
        )
        actions = json.dumps(policy)
        assert "dynamodb:BatchWriteItem" in actions
        assert "dynamodb:Scan" not in actions

    @pytest.mark.parametrize("resource_type", DATA_RESOURCE_TYPES)
    def test_data_is_destroyed_with_the_stack(self, dev: Synthesized, resource_type: str) -> None:
        assert dev.template.find_resources(resource_type)
        dev.template.all_resources(
            resource_type, {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
        )

    def test_log_retention_is_the_stage_setting(self, dev: Synthesized) -> None:
        dev.template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


@pytest.mark.slow
class TestProdStage:
    def test_has_no_sample_source(self, prod: Synthesized, prod_stack: PaymentPostingStack) -> None:
        assert prod_stack.sample_source is None
        prod.template.resource_properties_count_is(
            "AWS::Lambda::Function", {"Handler": SAMPLE_SOURCE_HANDLER}, 0
        )
        prod.template.resource_count_is("AWS::Lambda::Function", 1)  # dedup only
        assert "SampleSourceFunctionName" not in prod.template.find_outputs("*")

    @pytest.mark.parametrize("resource_type", DATA_RESOURCE_TYPES)
    def test_data_is_retained(self, prod: Synthesized, resource_type: str) -> None:
        assert prod.template.find_resources(resource_type)
        prod.template.all_resources(
            resource_type, {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
        )

    def test_log_retention_is_the_stage_setting(self, prod: Synthesized) -> None:
        prod.template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
class TestEveryStage:
    def test_outputs(self, stage: str, request: pytest.FixtureRequest) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        stack = synthesized.stack
        assert isinstance(stack, PaymentPostingStack)
        ingest = stack.ingest
        synthesized.template.has_output(
            "TransactionsTableName", {"Value": ref(ingest.node.find_child("TransactionsTable"))}
        )
        synthesized.template.has_output("EventBusName", {"Value": ref(ingest.event_bus)})
        synthesized.template.has_output(
            "IngestDeadLetterQueueUrl", {"Value": ref(ingest.dead_letter_queue)}
        )

    def test_is_environment_agnostic(self, stage: str, request: pytest.FixtureRequest) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        stack = synthesized.stack
        assert cdk.Token.is_unresolved(stack.account)
        assert cdk.Token.is_unresolved(stack.region)
        assert stack.resolve(stack.account) == {"Ref": "AWS::AccountId"}
        assert stack.resolve(stack.region) == {"Ref": "AWS::Region"}
        # The test environment sets a region (tests/conftest.py); it must not leak in.
        rendered = json.dumps(synthesized.template.to_json())
        assert "eu-west-1" not in rendered
        assert "123456789012" not in rendered

    def test_is_tagged_with_project_and_stage(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        synthesized.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Tags": Match.array_with(
                    [
                        {"Key": "project", "Value": "payment-posting"},
                        {"Key": "stage", "Value": stage},
                    ]
                )
            },
        )


class TestStageConfig:
    def test_cdk_json_stages(self) -> None:
        dev = StageConfig.from_dict("dev", stage_values("dev"))
        prod = StageConfig.from_dict("prod", stage_values("prod"))
        assert dev == StageConfig(
            name="dev",
            removal_policy=RemovalPolicy.DESTROY,
            log_retention=logs.RetentionDays.ONE_MONTH,
            sample_source=True,
        )
        assert prod == StageConfig(
            name="prod",
            removal_policy=RemovalPolicy.RETAIN,
            log_retention=logs.RetentionDays.ONE_YEAR,
            sample_source=False,
        )

    def test_defaults_are_the_safe_choices(self) -> None:
        config = StageConfig.from_dict("qa", {})
        assert config.removal_policy == RemovalPolicy.RETAIN
        assert config.log_retention == logs.RetentionDays.THREE_MONTHS
        assert config.sample_source is False

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            pytest.param(
                {"removalPolicy": "retain", "logRetention": 30, "colour": "blue"},
                r"stage 'dev' has unknown settings: colour, logRetention",
                id="unknown-settings",
            ),
            pytest.param(
                {"removalPolicy": "delete"},
                r"stage 'dev': removalPolicy must be 'retain' or 'destroy', got 'delete'",
                id="bad-removal-policy",
            ),
            pytest.param(
                {"logRetentionDays": 31},
                r"stage 'dev': logRetentionDays must be one of 7, 14, 30, 90, .*, 3653, got 31",
                id="log-retention-31",
            ),
            pytest.param(
                {"logRetentionDays": "thirty"},
                r"logRetentionDays must be one of .*, got 'thirty'",
                id="log-retention-not-a-number",
            ),
            pytest.param(
                {"sampleSource": "false"},
                r"sampleSource must be true or false, got 'false'",
                id="sample-source-string",
            ),
        ],
    )
    def test_from_dict_refuses_with_a_clear_message(
        self, values: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            StageConfig.from_dict("dev", values)

    def test_from_context_defaults_to_the_cdk_json_stage(self) -> None:
        config = StageConfig.from_context(make_app())
        assert config == StageConfig.from_dict("dev", stage_values("dev"))

    def test_from_context_reads_the_stage_chosen_on_the_command_line(self) -> None:
        config = StageConfig.from_context(make_app(stage="prod"))
        assert config == StageConfig.from_dict("prod", stage_values("prod"))

    def test_from_context_refuses_an_undefined_stage_naming_it(self) -> None:
        app = cdk.App(context={"stage": "qa", STAGES_CONTEXT_KEY: {"dev": stage_values("dev")}})
        with pytest.raises(ValueError, match=r"stage 'qa' is not defined.*\(defined: dev\)"):
            StageConfig.from_context(app)

    def test_from_context_without_any_stages(self) -> None:
        with pytest.raises(ValueError, match=r"stage 'dev' is not defined.*\(defined: none\)"):
            StageConfig.from_context(cdk.App())
