"""IngestPipe on its own, in a bare stack: what it creates, what it grants, what it refuses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Capture, Match, Template

from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_stack import IngestPipe
from tests.infra.support import (
    all_allowed_actions,
    allowed_actions,
    bare_stack,
    get_att,
    logical_id,
    ref,
    role_statements,
    table_arn,
)


@dataclass(frozen=True)
class Built:
    """An IngestPipe with default props, a role granted write access, and the template."""

    stack: cdk.Stack
    pipe: IngestPipe
    writer: iam.Role
    template: Template

    @property
    def transactions_resource(self) -> cdk.CfnResource:
        return _cfn_child(self.pipe, "TransactionsTable")

    @property
    def dedup_resource(self) -> cdk.CfnResource:
        return _cfn_child(self.pipe, "DedupTable")

    def pipe_properties(self) -> Mapping[str, Any]:
        return _only(self.template, "AWS::Pipes::Pipe")


def _cfn_child(scope: IngestPipe, child_id: str) -> cdk.CfnResource:
    """The CFN resource of a child construct (the tables are exposed as imported views)."""
    resource = scope.node.find_child(child_id).node.default_child
    assert isinstance(resource, cdk.CfnResource)
    return resource


def _only(template: Template, resource_type: str) -> Mapping[str, Any]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    properties: Mapping[str, Any] = next(iter(resources.values()))["Properties"]
    return properties


@pytest.fixture(scope="module")
def built() -> Built:
    stack = bare_stack()
    pipe = IngestPipe(stack, "Ingest")
    writer = iam.Role(stack, "Writer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    pipe.grant_write_transactions(writer)
    return Built(stack, pipe, writer, Template.from_stack(stack))


@pytest.fixture
def stack() -> cdk.Stack:
    """A fresh stack for tests that construct but never synthesize."""
    return bare_stack()


@pytest.mark.slow
class TestDefaults:
    def test_keys_are_rotated(self, built: Built) -> None:
        built.template.has_resource_properties(
            "AWS::KMS::Key",
            {
                "EnableKeyRotation": True,
                "Description": Match.string_like_regexp("transaction data"),
            },
        )
        built.template.has_resource_properties(
            "AWS::KMS::Key",
            {"EnableKeyRotation": True, "Description": Match.string_like_regexp("operational")},
        )
        # The transaction key, the operations key and the archive's.
        built.template.resource_count_is("AWS::KMS::Key", 3)
        built.template.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})

    def test_transactions_table_streams_new_images_encrypted_with_the_key(
        self, built: Built
    ) -> None:
        table = built.template.to_json()["Resources"][logical_id(built.transactions_resource)]
        assert table["Type"] == "AWS::DynamoDB::GlobalTable"
        built.template.has_resource_properties(
            "AWS::DynamoDB::GlobalTable",
            {
                "KeySchema": [{"AttributeName": "transactionId", "KeyType": "HASH"}],
                "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
                "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
                "Replicas": [
                    Match.object_like(
                        {
                            "PointInTimeRecoverySpecification": {
                                "PointInTimeRecoveryEnabled": True
                            },
                            "SSESpecification": {
                                "KMSMasterKeyId": get_att(built.pipe.encryption_key)
                            },
                        }
                    )
                ],
            },
        )

    def test_dedup_table_expires_fingerprints(self, built: Built) -> None:
        properties = built.template.to_json()["Resources"][logical_id(built.dedup_resource)][
            "Properties"
        ]
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": "expiresAt",
            "Enabled": True,
        }
        assert properties["KeySchema"] == [{"AttributeName": "fingerprint", "KeyType": "HASH"}]
        assert properties["Replicas"][0]["SSESpecification"] == {
            "KMSMasterKeyId": get_att(built.pipe.encryption_key)
        }
        assert "StreamSpecification" not in properties

    def test_pipe_reads_only_inserts_from_the_table_stream(self, built: Built) -> None:
        pattern = Capture()
        built.template.has_resource_properties(
            "AWS::Pipes::Pipe",
            {
                "Source": get_att(built.transactions_resource, "StreamArn"),
                "SourceParameters": {
                    "FilterCriteria": {"Filters": [{"Pattern": pattern}]},
                    "DynamoDBStreamParameters": Match.any_value(),
                },
            },
        )
        assert json.loads(pattern.as_string()) == {"eventName": ["INSERT"]}

    def test_pipe_batches_fit_one_put_events_call_and_retries_are_bounded(
        self, built: Built
    ) -> None:
        parameters = built.pipe_properties()["SourceParameters"]["DynamoDBStreamParameters"]
        assert parameters["BatchSize"] == 10
        assert parameters["StartingPosition"] == "TRIM_HORIZON"
        # -1 would mean "retry forever": one poison batch would block its shard.
        assert 0 <= parameters["MaximumRetryAttempts"] <= 10_000
        assert 60 <= parameters["MaximumRecordAgeInSeconds"] <= 604_800
        assert parameters["DeadLetterConfig"] == {"Arn": get_att(built.pipe.dead_letter_queue)}

    def test_pipe_enriches_with_dedup_and_publishes_transaction_authorized(
        self, built: Built
    ) -> None:
        built.template.has_resource_properties(
            "AWS::Pipes::Pipe",
            {
                "Enrichment": get_att(built.pipe.dedup_function),
                "Target": get_att(built.pipe.event_bus),
                "TargetParameters": {
                    "EventBridgeEventBusParameters": {
                        "DetailType": EventName.TRANSACTION_AUTHORIZED.value,
                        "Source": EventSource.INGEST.value,
                    }
                },
                "RoleArn": get_att(built.pipe.pipe_role),
                "DesiredState": "RUNNING",
            },
        )

    def test_pipe_logs_errors_without_execution_data(self, built: Built) -> None:
        built.template.has_resource_properties(
            "AWS::Pipes::Pipe",
            {
                "LogConfiguration": {
                    "Level": "ERROR",
                    "IncludeExecutionData": Match.absent(),
                    "CloudwatchLogsLogDestination": {
                        "LogGroupArn": get_att(built.pipe.pipe_log_group)
                    },
                }
            },
        )

    def test_bus_is_encrypted_and_has_a_dead_letter_queue(self, built: Built) -> None:
        bus_dlq = Capture()
        built.template.has_resource_properties(
            "AWS::Events::EventBus",
            {
                "KmsKeyIdentifier": get_att(built.pipe.encryption_key),
                "DeadLetterConfig": {"Arn": bus_dlq},
            },
        )
        built.template.resource_count_is("AWS::Events::EventBus", 1)
        # The bus's own DLQ is not the pipe's: a bus that cannot use the key must still DLQ.
        assert bus_dlq.as_object() != get_att(built.pipe.dead_letter_queue)

    def test_bus_may_deliver_to_its_dead_letter_queue(self, built: Built) -> None:
        bus_dlq = Capture()
        built.template.has_resource_properties(
            "AWS::Events::EventBus", {"DeadLetterConfig": {"Arn": bus_dlq}}
        )
        queue_id = bus_dlq.as_object()["Fn::GetAtt"][0]
        built.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Allow",
                                    "Action": "sqs:SendMessage",
                                    "Principal": {"Service": "events.amazonaws.com"},
                                    "Condition": {
                                        "ArnEquals": {
                                            "aws:SourceArn": get_att(built.pipe.event_bus)
                                        }
                                    },
                                }
                            )
                        ]
                    )
                },
            },
        )

    def test_archive_of_the_bus_is_encrypted(self, built: Built) -> None:
        assert isinstance(built.pipe.archive, events.Archive)
        built.template.resource_count_is("AWS::Events::Archive", 1)
        built.template.has_resource_properties(
            "AWS::Events::Archive",
            {
                "SourceArn": get_att(built.pipe.event_bus),
                "KmsKeyIdentifier": Match.object_like({"Fn::GetAtt": Match.any_value()}),
                "RetentionDays": 365,
            },
        )

    def test_the_archive_keeps_the_roots_a_replay_rederives_the_rest_from(
        self, built: Built
    ) -> None:
        (archive,) = built.template.find_resources("AWS::Events::Archive").values()
        pattern = archive["Properties"]["EventPattern"]
        assert sorted(pattern["source"]) == [
            "payments.ingest", "payments.operations", "payments.review",
        ]  # fmt: skip
        assert "account" in pattern  # this account's events only

    def test_archived_sources_can_be_chosen_and_an_empty_choice_is_refused(self) -> None:
        stack = bare_stack()
        IngestPipe(stack, "Ingest", archived_sources=["payments.ingest", "payments.posting"])
        (archive,) = Template.from_stack(stack).find_resources("AWS::Events::Archive").values()
        assert archive["Properties"]["EventPattern"]["source"] == [
            "payments.ingest", "payments.posting",
        ]  # fmt: skip
        with pytest.raises(ValueError, match="archived_sources is a non-empty list"):
            IngestPipe(bare_stack(), "Ingest", archived_sources=[])

    def test_dead_letter_queue_is_encrypted_with_the_operations_key_and_tls_only(
        self, built: Built
    ) -> None:
        # Pipes writes where a failed batch is in the stream, never its records.
        built.template.has_resource_properties(
            "AWS::SQS::Queue",
            {
                "KmsMasterKeyId": get_att(built.pipe.operations_key),
                "MessageRetentionPeriod": 14 * 86_400,
            },
        )
        built.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [ref(built.pipe.dead_letter_queue)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "sqs:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    "Principal": {"AWS": "*"},
                                }
                            )
                        ]
                    )
                },
            },
        )

    def test_every_queue_denies_plain_http(self, built: Built) -> None:
        queues = built.template.find_resources("AWS::SQS::Queue")
        tls_only = built.template.find_resources(
            "AWS::SQS::QueuePolicy",
            {
                "Properties": {
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
                    }
                }
            },
        )
        covered = {
            queue["Ref"] for policy in tls_only.values() for queue in policy["Properties"]["Queues"]
        }
        assert covered == set(queues)

    def test_every_log_group_has_a_retention(self, built: Built) -> None:
        log_groups = built.template.find_resources("AWS::Logs::LogGroup")
        assert len(log_groups) >= 2  # the function's and the pipe's
        built.template.all_resources_properties(
            "AWS::Logs::LogGroup", {"RetentionInDays": Match.any_value()}
        )
        assert {group["Properties"]["RetentionInDays"] for group in log_groups.values()} == {90}

    def test_dedup_function_runtime_tracing_environment_and_layer(self, built: Built) -> None:
        layer = built.template.get_resource_id("AWS::Lambda::LayerVersion")
        built.template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "payment_posting_functions.handlers.dedup.handler",
                "Runtime": "python3.14",
                "Architectures": ["arm64"],
                "TracingConfig": {"Mode": "PassThrough"},
                "Environment": {
                    "Variables": Match.object_like(
                        {
                            "DEDUP_TABLE_NAME": ref(built.dedup_resource),
                            "DEDUP_WINDOW_SECONDS": "86400",
                        }
                    )
                },
                "Layers": [{"Ref": layer}],
            },
        )

    def test_no_role_has_aws_managed_policies(self, built: Built) -> None:
        roles = built.template.find_resources("AWS::IAM::Role")
        assert len(roles) >= 2
        built.template.all_resources_properties(
            "AWS::IAM::Role", {"ManagedPolicyArns": Match.absent()}
        )

    def test_pipe_role_is_assumable_by_pipes_of_this_account_only(self, built: Built) -> None:
        built.template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "pipes.amazonaws.com"},
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        }
                    ]
                },
                "Description": "Execution role of the ingest pipe",
            },
        )

    def test_pipe_role_invokes_exactly_the_dedup_function(self, built: Built) -> None:
        role_id = logical_id(built.pipe.pipe_role)
        invoke = [
            statement
            for statement in role_statements(built.template, role_id)
            if "lambda:InvokeFunction" in statement.actions
        ]
        assert len(invoke) == 1
        # grant_invoke() would add "<arn>:*" (every version); the pipe calls the function only.
        assert invoke[0].resources == (get_att(built.pipe.dedup_function),)
        assert invoke[0].actions == ("lambda:InvokeFunction",)
        assert ":*" not in json.dumps(invoke[0].resources)

    # What the roles must be allowed is derived from the calls the code makes, in
    # tests/e2e/test_permissions_used.py; here only what they must never be allowed.
    def test_pipe_role_publishes_only_to_the_bus(self, built: Built) -> None:
        role_id = logical_id(built.pipe.pipe_role)
        bus = allowed_actions(built.template, role_id, get_att(built.pipe.event_bus))
        assert bus == {"events:PutEvents"}

    def test_dedup_role_cannot_scan_or_delete_fingerprints(self, built: Built) -> None:
        role = built.pipe.dedup_function.role
        assert role is not None
        everything = all_allowed_actions(built.template, logical_id(role))
        forbidden = {"dynamodb:Scan", "dynamodb:*", "*"}
        assert not everything & forbidden, everything & forbidden
        dedup = allowed_actions(built.template, logical_id(role), table_arn(built.dedup_resource))
        assert "dynamodb:DeleteItem" not in dedup

    def test_dedup_role_moves_refused_records_to_the_quarantine(self, built: Built) -> None:
        # Only delete on the transactions table (a refused record leaves it), only put on the
        # quarantine: no read of either, no update.
        role = built.pipe.dedup_function.role
        assert role is not None
        transactions = allowed_actions(
            built.template, logical_id(role), table_arn(built.transactions_resource)
        )
        quarantine = allowed_actions(
            built.template,
            logical_id(role),
            table_arn(_cfn_child(built.pipe, "QuarantineTable")),
        )
        assert {a for a in transactions if a.startswith("dynamodb:")} == {"dynamodb:DeleteItem"}
        assert {a for a in quarantine if a.startswith("dynamodb:")} == {"dynamodb:PutItem"}


@pytest.mark.slow
class TestPublicApi:
    def test_attributes_are_the_resources_they_name(self, built: Built) -> None:
        pipe = built.pipe
        assert isinstance(pipe.transactions_table, dynamodb.TableBaseV2)
        assert isinstance(pipe.dedup_table, dynamodb.TableBaseV2)
        assert isinstance(pipe.event_bus, events.EventBus)
        assert isinstance(pipe.pipe, pipes.CfnPipe)
        assert isinstance(pipe.dedup_function, lambda_.Function)
        assert isinstance(pipe.dead_letter_queue, sqs.Queue)
        assert isinstance(pipe.encryption_key, kms.Key)
        assert isinstance(pipe.archive, events.Archive)
        assert isinstance(pipe.pipe_role, iam.Role)
        assert isinstance(pipe.pipe_log_group, logs.LogGroup)
        stack = built.stack
        assert stack.resolve(pipe.transactions_table.table_name) == ref(built.transactions_resource)
        assert stack.resolve(pipe.dedup_table.table_name) == ref(built.dedup_resource)
        assert stack.resolve(pipe.transactions_table.table_stream_arn) == get_att(
            built.transactions_resource, "StreamArn"
        )

    def test_tables_know_their_key_so_grants_include_it(self, built: Built) -> None:
        assert built.pipe.transactions_table.encryption_key is built.pipe.encryption_key
        assert built.pipe.dedup_table.encryption_key is built.pipe.encryption_key

    def test_grant_write_transactions(self, built: Built) -> None:
        role_id = logical_id(built.writer)
        on_table = allowed_actions(built.template, role_id, table_arn(built.transactions_resource))
        assert on_table == {"dynamodb:PutItem", "dynamodb:BatchWriteItem"}
        # DynamoDB decrypts the table key for the writer; nothing else, and only through it.
        on_key = allowed_actions(built.template, role_id, get_att(built.pipe.encryption_key))
        assert on_key == {"kms:Decrypt"}
        # Nothing on the dedup table: writing transactions is not claiming fingerprints.
        assert not allowed_actions(built.template, role_id, table_arn(built.dedup_resource))

    def test_grant_write_transactions_names_what_the_writer_calls(self) -> None:
        stack = bare_stack()
        pipe = IngestPipe(stack, "Ingest")
        writer = iam.Role(stack, "Writer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        pipe.grant_write_transactions(writer, "dynamodb:BatchWriteItem")
        template = Template.from_stack(stack)
        on_table = allowed_actions(
            template, logical_id(writer), table_arn(_cfn_child(pipe, "TransactionsTable"))
        )
        assert on_table == {"dynamodb:BatchWriteItem"}
        with pytest.raises(ValueError, match=r"PutItem or dynamodb:BatchWriteItem, not .*Delete"):
            pipe.grant_write_transactions(writer, "dynamodb:DeleteItem")

    def test_metric_dead_letter_messages(self, built: Built) -> None:
        metric = built.pipe.metric_dead_letter_messages()
        assert isinstance(metric, cloudwatch.Metric)
        assert metric.metric_name == "ApproximateNumberOfMessagesVisible"
        assert metric.namespace == "AWS/SQS"
        assert metric.statistic == "Maximum"
        assert metric.period.to_seconds() == 60
        assert built.stack.resolve(metric.dimensions) == {
            "QueueName": get_att(built.pipe.dead_letter_queue, "QueueName")
        }

    def test_metric_period_and_statistic_can_be_chosen(self, built: Built) -> None:
        metric = built.pipe.metric_dead_letter_messages(period=Duration.minutes(5), statistic="Sum")
        assert metric.period.to_seconds() == 300
        assert metric.statistic == "Sum"


@pytest.mark.slow
class TestExistingResources:
    def test_existing_bus_is_the_target_and_gets_no_archive(self) -> None:
        stack = bare_stack()
        bus = events.EventBus(stack, "Existing")
        pipe = IngestPipe(stack, "Ingest", event_bus=bus)
        template = Template.from_stack(stack)

        assert pipe.event_bus is bus
        assert pipe.archive is None
        template.resource_count_is("AWS::Events::EventBus", 1)
        template.resource_count_is("AWS::Events::Archive", 0)
        template.has_resource_properties("AWS::Pipes::Pipe", {"Target": get_att(bus)})
        assert allowed_actions(template, logical_id(pipe.pipe_role), get_att(bus)) == {
            "events:PutEvents"
        }

    def test_existing_table_with_a_stream_is_the_source(self) -> None:
        stack = bare_stack()
        table = dynamodb.TableV2(
            stack,
            "Existing",
            partition_key=dynamodb.Attribute(
                name="transactionId", type=dynamodb.AttributeType.STRING
            ),
            dynamo_stream=dynamodb.StreamViewType.NEW_IMAGE,
        )
        pipe = IngestPipe(stack, "Ingest", transactions_table=table)
        template = Template.from_stack(stack)

        assert pipe.transactions_table is table
        template.has_resource_properties(
            "AWS::Pipes::Pipe", {"Source": get_att(table, "StreamArn")}
        )
        # The passed table, the dedup table and the quarantine: no second transactions table.
        template.resource_count_is("AWS::DynamoDB::GlobalTable", 3)
        stream = allowed_actions(template, logical_id(pipe.pipe_role), get_att(table, "StreamArn"))
        assert "dynamodb:GetRecords" in stream

    def test_imported_table_without_a_stream_is_refused(self, stack: cdk.Stack) -> None:
        table = dynamodb.TableV2.from_table_name(stack, "Imported", "transactions")
        with pytest.raises(ValueError, match="stream"):
            IngestPipe(stack, "Ingest", transactions_table=table)

    @pytest.mark.parametrize("view", [None, dynamodb.StreamViewType.KEYS_ONLY])
    def test_table_without_a_stream_of_new_images_is_refused(
        self, stack: cdk.Stack, view: dynamodb.StreamViewType | None
    ) -> None:
        table = dynamodb.TableV2(
            stack,
            "NoStream",
            partition_key=dynamodb.Attribute(
                name="transactionId", type=dynamodb.AttributeType.STRING
            ),
            dynamo_stream=view,
        )
        with pytest.raises(ValueError, match="no stream with new images"):
            IngestPipe(stack, "Ingest", transactions_table=table)

    def test_archive_retention_with_an_existing_bus_is_refused(self, stack: cdk.Stack) -> None:
        bus = events.EventBus(stack, "Existing")
        with pytest.raises(ValueError, match="archive_retention applies only"):
            IngestPipe(stack, "Ingest", event_bus=bus, archive_retention=Duration.days(30))


INVALID_PROPS: list[tuple[str, dict[str, Any], str]] = [
    ("batch_size-0", {"batch_size": 0}, r"batch_size.*10.*PutEvents"),
    ("batch_size-11", {"batch_size": 11}, r"batch_size.*10.*PutEvents"),
    ("retries-negative", {"maximum_retry_attempts": -1}, "maximum_retry_attempts"),
    ("retries-too-many", {"maximum_retry_attempts": 10_001}, "maximum_retry_attempts"),
    ("record-age-30s", {"maximum_record_age": Duration.seconds(30)}, "maximum_record_age"),
    ("record-age-8d", {"maximum_record_age": Duration.days(8)}, "maximum_record_age"),
    ("parallelization-0", {"parallelization_factor": 0}, "parallelization_factor"),
    ("parallelization-11", {"parallelization_factor": 11}, "parallelization_factor"),
    ("at-timestamp", {"starting_position": "AT_TIMESTAMP"}, "starting_position"),
    ("dedup-window-0s", {"dedup_window": Duration.seconds(0)}, "dedup_window"),
    ("dedup-window-8d", {"dedup_window": Duration.days(8)}, "dedup_window"),
    (
        "batching-window-301s",
        {"maximum_batching_window": Duration.seconds(301)},
        "maximum_batching_window",
    ),
]


@pytest.mark.parametrize(
    ("props", "message"),
    [pytest.param(props, message, id=name) for name, props, message in INVALID_PROPS],
)
def test_invalid_props_are_refused_naming_the_prop(
    stack: cdk.Stack, props: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        IngestPipe(stack, "Ingest", **props)


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({"batch_size": 1}, id="batch_size-1"),
        pytest.param({"maximum_retry_attempts": 0}, id="no-retries"),
        pytest.param({"maximum_record_age": Duration.seconds(60)}, id="record-age-60s"),
        pytest.param({"maximum_record_age": Duration.days(7)}, id="record-age-7d"),
        pytest.param({"starting_position": "LATEST"}, id="latest"),
        pytest.param({"dedup_window": Duration.days(7)}, id="dedup-window-7d"),
    ],
)
def test_boundary_props_are_accepted(stack: cdk.Stack, props: dict[str, Any]) -> None:
    IngestPipe(stack, "Ingest", **props)


@pytest.mark.slow
def test_custom_props_reach_the_template() -> None:
    stack = bare_stack()
    IngestPipe(
        stack,
        "Ingest",
        batch_size=5,
        maximum_batching_window=Duration.seconds(2),
        starting_position="LATEST",
        maximum_retry_attempts=5,
        maximum_record_age=Duration.minutes(10),
        parallelization_factor=2,
        event_source="acme.ingest",
        dedup_window=Duration.minutes(30),
        archive_retention=Duration.days(30),
        log_retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::Pipes::Pipe",
        {
            "SourceParameters": Match.object_like(
                {
                    "DynamoDBStreamParameters": Match.object_like(
                        {
                            "BatchSize": 5,
                            "MaximumBatchingWindowInSeconds": 2,
                            "StartingPosition": "LATEST",
                            "MaximumRetryAttempts": 5,
                            "MaximumRecordAgeInSeconds": 600,
                            "ParallelizationFactor": 2,
                        }
                    )
                }
            ),
            "TargetParameters": {
                "EventBridgeEventBusParameters": {
                    "DetailType": EventName.TRANSACTION_AUTHORIZED.value,
                    "Source": "acme.ingest",
                }
            },
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like({"DEDUP_WINDOW_SECONDS": "1800"}),
            }
        },
    )
    template.has_resource_properties("AWS::Events::Archive", {"RetentionDays": 30})
    template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})
    template.all_resources("AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Delete"})
    template.all_resources("AWS::KMS::Key", {"DeletionPolicy": "Delete"})


@pytest.mark.slow
def test_default_removal_policy_retains_payment_data(built: Built) -> None:
    built.template.all_resources("AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Retain"})
    built.template.all_resources("AWS::KMS::Key", {"DeletionPolicy": "Retain"})
    assert "MaximumBatchingWindowInSeconds" not in json.dumps(built.pipe_properties())
