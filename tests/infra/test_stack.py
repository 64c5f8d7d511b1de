"""PaymentPostingStack per stage, and the stage settings read from cdk.json."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match
from constructs import IConstruct

from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_stack import PaymentPostingStack, StageConfig
from payment_stack.config import STAGES_CONTEXT_KEY
from payment_stack.observability import Observability
from tests.infra.support import (
    ROOT,
    Synthesized,
    allowed_actions,
    get_att,
    logical_id,
    make_app,
    ref,
    stage_values,
    table_arn,
    walk,
)

# Resources that hold payment data or decrypt it: what "retain" must keep.
DATA_RESOURCE_TYPES = [
    "AWS::DynamoDB::GlobalTable",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",  # failed batches wait here for redrive
    "AWS::Logs::LogGroup",
]
SAMPLE_SOURCE_HANDLER = "payment_posting_functions.handlers.source.handler"
# The pipeline's functions in every stage: dedup, enrichment, screening outcomes, posting,
# and the ledger's expiry sweeper.
PIPELINE_FUNCTIONS = 5
STAGE_POLICIES = {"dev": "Delete", "prod": "Retain"}
TLS_ONLY = Match.object_like(
    {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
)


def _synthesized(
    stage: str, request: pytest.FixtureRequest
) -> tuple[Synthesized, PaymentPostingStack]:
    synthesized: Synthesized = request.getfixturevalue(stage)
    stack = synthesized.stack
    assert isinstance(stack, PaymentPostingStack)
    return synthesized, stack


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_id(grantable: Any) -> str:
    """The logical id of the role a function or state machine runs as."""
    return logical_id(grantable.role)


def _cfn_child(scope: IConstruct, child_id: str) -> IConstruct:
    """The CFN resource of a child construct (tables are exposed as imported views)."""
    resource = scope.node.find_child(child_id).node.default_child
    assert resource is not None, f"{scope.node.path}/{child_id} has no CFN resource"
    return resource


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
                            ),
                            "ACCOUNTS_TABLE_NAME": ref(
                                dev_stack.enrichment.node.find_child("AccountsTable")
                            ),
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
        role_id = logical_id(dev_stack.sample_source.role)
        transactions = table_arn(_cfn_child(dev_stack.ingest, "TransactionsTable"))
        # boto3's batch writer is all it uses (domain/transaction_table.py).
        assert allowed_actions(dev.template, role_id, transactions) == {"dynamodb:BatchWriteItem"}

    def test_sample_source_may_write_accounts(
        self, dev: Synthesized, dev_stack: PaymentPostingStack
    ) -> None:
        assert dev_stack.sample_source is not None
        role_id = logical_id(dev_stack.sample_source.role)
        accounts = table_arn(_cfn_child(dev_stack.enrichment, "AccountsTable"))
        on_accounts = allowed_actions(dev.template, role_id, accounts)
        assert on_accounts == {"dynamodb:BatchWriteItem"}
        # The accounts table is encrypted with the ledger key; DynamoDB decrypts its table key.
        on_key = allowed_actions(dev.template, role_id, get_att(dev_stack.ledger_key))
        assert on_key == {"kms:Decrypt"}

    def test_sample_source_may_open_ledger_accounts_but_not_touch_the_journal(
        self, dev: Synthesized, dev_stack: PaymentPostingStack
    ) -> None:
        # What it calls is proven by the end-to-end suite (test_permissions_used.py); this
        # holds the line that matters: the journal of money moved is out of its reach.
        assert dev_stack.sample_source is not None
        assert dev_stack.poster.journal_table is not None
        role_id = logical_id(dev_stack.sample_source.role)
        journal = table_arn(_cfn_child(dev_stack.poster, "LedgerJournal"))
        assert allowed_actions(dev.template, role_id, journal) == set()
        variables = dev.resources[logical_id(dev_stack.sample_source.function)]["Properties"][
            "Environment"
        ]["Variables"]
        assert "LEDGER_BALANCES_TABLE_NAME" in variables

    def test_has_the_pipeline_functions_and_the_sample_source(self, dev: Synthesized) -> None:
        dev.template.resource_count_is("AWS::Lambda::Function", PIPELINE_FUNCTIONS + 1)

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
        prod.template.resource_count_is("AWS::Lambda::Function", PIPELINE_FUNCTIONS)
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
class TestTableProtection:
    @pytest.mark.parametrize(("stage_name", "protected"), [("dev", False), ("prod", True)])
    def test_tables_kept_with_the_stack_cannot_be_deleted_by_one_call(
        self, stage_name: str, protected: bool, request: pytest.FixtureRequest
    ) -> None:
        # cdk-nag does not inspect TableV2, so this is checked here.
        synthesized: Synthesized = request.getfixturevalue(stage_name)
        tables = synthesized.template.find_resources("AWS::DynamoDB::GlobalTable")
        assert tables
        for name, table in tables.items():
            for replica in table["Properties"]["Replicas"]:
                assert replica.get("DeletionProtectionEnabled", False) is protected, name
                # Point-in-time recovery (35 days) is the backup; see ADR 0009.
                assert replica["PointInTimeRecoverySpecification"] == {
                    "PointInTimeRecoveryEnabled": True
                }, name


class TestRetention:
    """Finding 6 of issue 9: what the pipeline stores expires, per stage."""

    @pytest.mark.parametrize(("stage_name", "days"), [("dev", 7), ("prod", 35)])
    def test_transactions_and_quarantine_expire_after_the_stage_retention(
        self, stage_name: str, days: int, request: pytest.FixtureRequest
    ) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage_name)
        stack: PaymentPostingStack = request.getfixturevalue(f"{stage_name}_stack")
        resources = synthesized.template.to_json()["Resources"]
        for child in ("TransactionsTable", "QuarantineTable"):
            table = resources[logical_id(stack.ingest.node.find_child(child))]
            assert table["Properties"]["TimeToLiveSpecification"] == {
                "AttributeName": "expiresAt",
                "Enabled": True,
            }, child
        seconds = str(days * 24 * 3600)
        # What the writers set expiresAt from: the dedup function (quarantine), the sample
        # source where there is one, and any other writer through the stack output.
        env = resources[logical_id(stack.ingest.dedup_function)]["Properties"]["Environment"]
        assert env["Variables"]["RETENTION_SECONDS"] == seconds
        synthesized.template.has_output("TransactionRetentionSeconds", {"Value": seconds})

    @pytest.mark.parametrize(("stage_name", "days"), [("dev", 7), ("prod", 35)])
    def test_a_review_of_a_held_transaction_expires_after_the_stage_retention(
        self, stage_name: str, days: int, request: pytest.FixtureRequest
    ) -> None:
        # The pending review holds the transaction: it is kept no longer than the record.
        synthesized: Synthesized = request.getfixturevalue(stage_name)
        stack: PaymentPostingStack = request.getfixturevalue(f"{stage_name}_stack")
        resources = synthesized.template.to_json()["Resources"]
        table = resources[logical_id(_cfn_child(stack.rules_engine, "PendingReviews"))]
        assert table["Properties"]["TimeToLiveSpecification"] == {
            "AttributeName": "expiresAt",
            "Enabled": True,
        }
        machine = resources[logical_id(stack.rules_engine.state_machine)]["Properties"]
        assert machine["DefinitionSubstitutions"]["PendingReviewDays"] == str(days)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
class TestEveryStage:
    def test_outputs(self, stage: str, request: pytest.FixtureRequest) -> None:
        synthesized, stack = _synthesized(stage, request)
        ingest = stack.ingest
        template = synthesized.template
        template.has_output(
            "TransactionsTableName", {"Value": ref(ingest.node.find_child("TransactionsTable"))}
        )
        template.has_output("EventBusName", {"Value": ref(ingest.event_bus)})
        template.has_output("IngestDeadLetterQueueUrl", {"Value": ref(ingest.dead_letter_queue)})
        template.has_output(
            "AccountsTableName", {"Value": ref(_cfn_child(stack.enrichment, "AccountsTable"))}
        )
        template.has_output(
            "NotificationTopicArn", {"Value": ref(stack.screening_outcomes.notification_topic)}
        )
        template.has_output(
            "RulesFailureTopicArn", {"Value": ref(stack.rules_engine.failure_topic)}
        )
        template.has_output(
            "RulesStateMachineArn", {"Value": ref(stack.rules_engine.state_machine)}
        )
        template.has_output(
            "PendingReviewsTableName",
            {"Value": ref(_cfn_child(stack.rules_engine, "PendingReviews"))},
        )
        template.has_output(
            "LedgerJournalTableName", {"Value": ref(_cfn_child(stack.poster, "LedgerJournal"))}
        )
        template.has_output(
            "LedgerBalancesTableName",
            {"Value": ref(_cfn_child(stack.poster, "LedgerBalances"))},
        )
        template.has_output("PostingQueueUrl", {"Value": ref(stack.poster.queue)})

    def test_processors_and_rules_engine_share_the_pipeline_bus_and_keys(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized, stack = _synthesized(stage, request)
        for part in (
            stack.enrichment,
            stack.screening_outcomes,
            stack.rules_engine,
            stack.poster,
        ):
            # Each holds the events that could not be delivered: transaction data.
            assert part.dead_letter_queue.encryption_master_key is stack.transactions_key
        assert stack.poster.queue.encryption_master_key is stack.transactions_key
        assert stack.rules_engine.encryption_key is stack.transactions_key
        assert stack.rules_engine.operations_key is stack.operations_key
        # No construct makes a key of its own: the three domain keys and the archive key.
        synthesized.template.resource_count_is("AWS::KMS::Key", 4)
        for rule in (
            stack.enrichment.rule,
            stack.screening_outcomes.duplicates_rule,
            stack.screening_outcomes.quarantine_rule,
            stack.rules_engine.rule,
            stack.poster.rule,
        ):
            properties = synthesized.resources[logical_id(rule)]["Properties"]
            assert properties["EventBusName"] == ref(stack.ingest.event_bus)

    def test_every_queue_denies_plain_http(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized, _ = _synthesized(stage, request)
        queues = synthesized.template.find_resources("AWS::SQS::Queue")
        # ingest, bus, enrichment, screening outcomes, rules engine, posting buffer and its
        # DLQ, the expiry sweeper's failed sweeps
        assert len(queues) == 8
        tls_only = synthesized.template.find_resources(
            "AWS::SQS::QueuePolicy",
            {"Properties": {"PolicyDocument": {"Statement": Match.array_with([TLS_ONLY])}}},
        )
        covered = {
            queue["Ref"] for policy in tls_only.values() for queue in policy["Properties"]["Queues"]
        }
        assert covered == set(queues)

    def test_new_parts_follow_the_stage_removal_policy(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized, stack = _synthesized(stage, request)
        expected = STAGE_POLICIES[stage]
        sweeper = stack.poster.expiry_sweeper
        assert sweeper is not None
        data: dict[str, IConstruct] = {
            "accounts table": _cfn_child(stack.enrichment, "AccountsTable"),
            "enrichment queue": stack.enrichment.dead_letter_queue,
            "outcomes queue": stack.screening_outcomes.dead_letter_queue,
            "rules queue": stack.rules_engine.dead_letter_queue,
            "rules log group": stack.rules_engine.log_group,
            "ledger journal": _cfn_child(stack.poster, "LedgerJournal"),
            "ledger balances": _cfn_child(stack.poster, "LedgerBalances"),
            "idempotency table": _cfn_child(stack.poster, "IdempotencyTable"),
            "posting queue": stack.poster.queue,
            "posting dead-letter queue": stack.poster.dead_letter_queue,
            "expiry sweeper dead-letter queue": sweeper.dead_letter_queue,
        }
        ids = {name: logical_id(construct) for name, construct in data.items()}
        # The log group every function writes to, the new processors' included.
        functions = synthesized.template.find_resources("AWS::Lambda::Function")
        for function_id, function in functions.items():
            log_group = function["Properties"]["LoggingConfig"]["LogGroup"]
            ids[f"{function_id} log group"] = log_group["Ref"]
        assert len(ids) == len(data) + PIPELINE_FUNCTIONS + (stage == "dev")
        for name, resource_id in ids.items():
            resource = synthesized.resources[resource_id]
            assert resource.get("DeletionPolicy") == expected, name
            assert resource.get("UpdateReplacePolicy") == expected, name

    def test_the_poster_takes_what_the_rules_engine_approves(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized, stack = _synthesized(stage, request)
        pattern = synthesized.resources[logical_id(stack.poster.rule)]["Properties"]["EventPattern"]
        assert synthesized.resources[logical_id(stack.poster.rule)]["Properties"][
            "EventBusName"
        ] == ref(stack.ingest.event_bus)
        # What the business-rules workflow puts on the bus for an approved transaction, with
        # the names the stack substitutes.
        machine = synthesized.resources[logical_id(stack.rules_engine.state_machine)]
        names = {
            key: value
            for key, value in machine["Properties"]["DefinitionSubstitutions"].items()
            if isinstance(value, str)
        }
        definition = json.loads(
            re.sub(
                r"\$\{(\w+)\}",
                lambda match: names.get(match.group(1), match.group(0)),
                (ROOT / "statemachine" / "business_rules.asl.json").read_text(),
            )
        )
        approvals = [
            entry
            for value in walk(definition)
            if isinstance(value, dict) and isinstance(value.get("Entries"), list)
            for entry in value["Entries"]
            if entry.get("DetailType") == EventName.TRANSACTION_APPROVED
        ]
        assert approvals, "the workflow publishes no TransactionApproved"
        for entry in approvals:
            assert pattern == {"source": [entry["Source"]], "detail-type": [entry["DetailType"]]}

    def test_each_role_may_publish_only_its_own_source(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized, stack = _synthesized(stage, request)
        sweeper = stack.poster.expiry_sweeper
        assert sweeper is not None
        expected = {
            logical_id(stack.ingest.pipe_role): [EventSource.INGEST],
            _role_id(stack.enrichment.function): [EventSource.ENRICHMENT],
            _role_id(stack.screening_outcomes.function): [EventSource.SCREENING],
            _role_id(stack.rules_engine.state_machine): [EventSource.RULES],
            _role_id(stack.poster.function): [EventSource.POSTING],
            # The expiry sweeper announces released holds as the posting stage.
            _role_id(sweeper.function): [EventSource.POSTING],
        }
        found: dict[str, list[Any]] = {}
        for policy in synthesized.template.find_resources("AWS::IAM::Policy").values():
            [role] = policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "events:PutEvents" in _as_list(statement["Action"]):
                    # Without the condition a role could forge any processor's events.
                    found[role["Ref"]] = statement["Condition"]["StringEquals"]["events:source"]
        assert {role: _as_list(sources) for role, sources in found.items()} == expected

    def test_only_the_posting_rule_may_fill_the_posting_queue(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized, stack = _synthesized(stage, request)
        synthesized.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [ref(stack.poster.queue)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Principal": {"Service": "events.amazonaws.com"},
                                    "Action": "sqs:SendMessage",
                                    "Condition": {
                                        "ArnNotEquals": {
                                            "aws:SourceArn": get_att(stack.poster.rule)
                                        }
                                    },
                                }
                            )
                        ]
                    )
                },
            },
        )
        poster = synthesized.resources[logical_id(stack.poster.function)]
        assert poster["Properties"]["Environment"]["Variables"]["APPROVED_SOURCE"] == (
            EventSource.RULES
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
            data_retention_days=7,
            archive_retention_days=7,
            observability=Observability(
                log_level="INFO", tracing="sampled", trace_sample_rate=0.05
            ),
        )
        assert prod == StageConfig(
            name="prod",
            removal_policy=RemovalPolicy.RETAIN,
            log_retention=logs.RetentionDays.ONE_YEAR,
            sample_source=False,
            data_retention_days=35,
            archive_retention_days=35,
            posting_batching_window_seconds=1,
            observability=Observability(
                log_level="INFO", tracing="sampled", trace_sample_rate=0.01
            ),
        )

    def test_defaults_are_the_safe_choices(self) -> None:
        config = StageConfig.from_dict("qa", {})
        assert config.removal_policy == RemovalPolicy.RETAIN
        assert config.log_retention == logs.RetentionDays.THREE_MONTHS
        assert config.sample_source is False
        assert config.data_retention_days == 90

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
            pytest.param(
                {"dataRetentionDays": 0},
                r"dataRetentionDays must be a whole number of days, at least 1, got 0",
                id="data-retention-zero",
            ),
            pytest.param(
                {"dataRetentionDays": "7"},
                r"dataRetentionDays must be a whole number of days, at least 1, got '7'",
                id="data-retention-string",
            ),
            pytest.param(
                {"archiveRetentionDays": 0},
                r"archiveRetentionDays must be a whole number of days, at least 1, got 0",
                id="archive-retention-zero",
            ),
            pytest.param(
                {"postingBatchingWindowSeconds": 301},
                r"postingBatchingWindowSeconds must be a whole number of seconds from 0 to 300",
                id="batching-window-too-long",
            ),
        ],
    )
    def test_from_dict_refuses_with_a_clear_message(
        self, values: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            StageConfig.from_dict("dev", values)

    def test_the_archive_keeps_as_long_as_the_data_unless_told(self) -> None:
        assert StageConfig.from_dict("lab", {"dataRetentionDays": 30}).archive_retention_days == 30
        told = StageConfig.from_dict("lab", {"dataRetentionDays": 30, "archiveRetentionDays": 400})
        assert told.archive_retention_days == 400

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
