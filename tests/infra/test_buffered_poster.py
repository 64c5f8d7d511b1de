"""BufferedPoster in a bare stack with a bus and a key.

Approved transactions go through an SQS buffer into the posting function at a bounded
concurrency. What must hold: the buffer is private (encrypted, TLS only), it redrives to a
dead-letter queue, a batch reports its failures one by one, nothing serializes the traffic,
and the function may write the ledger but never delete from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_posting_functions.domain.ledger_v2.dynamodb import table_definitions
from payment_posting_functions.handlers import posting as posting_handler
from payment_stack.buffered_poster import BufferedPoster
from payment_stack.posting_target import PostingTarget
from tests.infra.support import (
    all_allowed_actions,
    allowed_actions,
    bare_stack,
    get_att,
    logical_id,
    ref,
    role_statements,
    table_arn,
    walk,
)

pytestmark = pytest.mark.slow

RULES_SOURCE = EventSource.RULES.value
TRANSACTION_APPROVED = EventName.TRANSACTION_APPROVED.value
CORE_BANKING_URL = "https://core.example/api"
FOURTEEN_DAYS = 14 * 86_400
TLS_ONLY = Match.object_like(
    {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
)
LEDGER_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
}


@dataclass(frozen=True)
class Built:
    stack: cdk.Stack
    bus: events.EventBus
    key: kms.Key
    poster: BufferedPoster
    template: Template

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template.to_json()["Resources"]
        return resources

    def properties(self, construct: Any) -> Mapping[str, Any]:
        properties: Mapping[str, Any] = self.resources[logical_id(construct)]["Properties"]
        return properties

    def cfn_child(self, child_id: str) -> cdk.CfnResource:
        """A table's CFN resource (the construct exposes an imported view that knows the key)."""
        resource = self.poster.node.find_child(child_id).node.default_child
        assert isinstance(resource, cdk.CfnResource)
        return resource

    @property
    def role_id(self) -> str:
        assert self.poster.function.role is not None
        return logical_id(self.poster.function.role)

    @property
    def event_source_mapping(self) -> Mapping[str, Any]:
        (mapping,) = self.template.find_resources("AWS::Lambda::EventSourceMapping").values()
        properties: Mapping[str, Any] = mapping["Properties"]
        return properties

    def queue_policy(self, queue: Any) -> list[Mapping[str, Any]]:
        """The statements of the one queue policy on ``queue``."""
        (policy,) = self.template.find_resources(
            "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [ref(queue)]}}
        ).values()
        statements: list[Mapping[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
        return statements


def build(**props: Any) -> Built:
    stack = bare_stack()
    bus = events.EventBus(stack, "Bus")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    poster = BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key, **props)
    return Built(stack, bus, key, poster, Template.from_stack(stack))


@pytest.fixture(scope="module")
def built() -> Built:
    return build()


@pytest.fixture(scope="module")
def custom() -> Built:
    """Every knob turned: what is set is what is deployed."""
    return build(
        batch_size=100,
        max_batching_window=Duration.seconds(5),
        max_concurrency=50,
        max_receive_count=3,
        function_timeout=Duration.seconds(10),
        approved_source="payments.manual-approval",
        hold_window=Duration.days(5),
        long_hold_window=Duration.days(45),
        tip_tolerance_bps=0,
    )


@pytest.fixture(scope="module")
def http() -> Built:
    return build(posting_target=PostingTarget.http(CORE_BANKING_URL))


def _events_may_send(statement: Mapping[str, Any]) -> bool:
    actions = statement["Action"]
    return (
        statement["Effect"] == "Allow"
        and statement.get("Principal") == {"Service": "events.amazonaws.com"}
        and "sqs:SendMessage" in (actions if isinstance(actions, list) else [actions])
    )


class TestQueue:
    def test_is_encrypted_with_the_key(self, built: Built) -> None:
        assert built.properties(built.poster.queue)["KmsMasterKeyId"] == get_att(built.key)
        assert built.poster.queue.encryption_master_key is built.key

    def test_denies_plain_http(self, built: Built) -> None:
        statements = built.queue_policy(built.poster.queue)
        assert any(
            s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Action"] == "sqs:*"
            and s["Principal"] == {"AWS": "*"}
            for s in statements
        ), statements

    def test_redrives_to_the_dead_letter_queue_after_five_receives(self, built: Built) -> None:
        assert built.properties(built.poster.queue)["RedrivePolicy"] == {
            "deadLetterTargetArn": get_att(built.poster.dead_letter_queue),
            "maxReceiveCount": 5,
        }

    def test_visibility_timeout_is_six_function_timeouts(self, built: Built) -> None:
        assert built.properties(built.poster.function)["Timeout"] == 30
        assert built.properties(built.poster.queue)["VisibilityTimeout"] == 180

    def test_visibility_timeout_follows_a_custom_function_timeout(self, custom: Built) -> None:
        assert custom.properties(custom.poster.function)["Timeout"] == 10
        # Six function timeouts plus the 5-second batching window, as Lambda advises.
        assert custom.properties(custom.poster.queue)["VisibilityTimeout"] == 65

    def test_custom_max_receive_count(self, custom: Built) -> None:
        assert custom.properties(custom.poster.queue)["RedrivePolicy"]["maxReceiveCount"] == 3

    def test_dead_letter_queue_keeps_fourteen_days_encrypted_and_tls_only(
        self, built: Built
    ) -> None:
        dead_letters = built.properties(built.poster.dead_letter_queue)
        assert dead_letters["MessageRetentionPeriod"] == FOURTEEN_DAYS
        assert dead_letters["KmsMasterKeyId"] == get_att(built.key)
        assert "RedrivePolicy" not in dead_letters
        built.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [ref(built.poster.dead_letter_queue)],
                "PolicyDocument": {"Statement": Match.array_with([TLS_ONLY])},
            },
        )

    def test_buffer_retention_is_shorter_than_the_dead_letter_queues(self, built: Built) -> None:
        # SQS keeps a message's first enqueue time when it moves to the dead-letter queue, so a
        # message that waited days in the buffer has that much less time in the DLQ.
        assert built.properties(built.poster.queue)["MessageRetentionPeriod"] == 4 * 86_400
        assert (
            built.properties(built.poster.dead_letter_queue)["MessageRetentionPeriod"]
            == FOURTEEN_DAYS
        )

    def test_idempotency_outlasts_the_buffer_retention(self, built: Built) -> None:
        retention = built.properties(built.poster.queue)["MessageRetentionPeriod"]
        dead_letter_retention = built.properties(built.poster.dead_letter_queue)[
            "MessageRetentionPeriod"
        ]
        # SQS counts retention from the first enqueue, in the DLQ too, so the longer one
        # bounds the last delivery. (A DLQ redrive enqueues anew: only the posting system's
        # own idempotency covers that.)
        latest_delivery = retention + dead_letter_retention
        assert posting_handler.idempotency.expires_after_seconds >= latest_delivery

    def test_nothing_is_fifo(self, built: Built) -> None:
        """One message group would serialize every posting behind the slowest."""
        for queue in built.template.find_resources("AWS::SQS::Queue").values():
            properties = queue["Properties"]
            assert "FifoQueue" not in properties
            assert "ContentBasedDeduplication" not in properties
            assert "DeduplicationScope" not in properties
        (target,) = built.properties(built.poster.rule)["Targets"]
        assert "SqsParameters" not in target
        keys = {
            key
            for value in walk(built.template.to_json())
            if isinstance(value, Mapping)
            for key in value
        }
        assert not {"FifoQueue", "MessageGroupId", "SqsParameters"} & keys
        assert not built.poster.queue.fifo
        assert not built.poster.dead_letter_queue.fifo


class TestRule:
    def test_takes_approved_transactions_from_the_rules_engine(self, built: Built) -> None:
        rule = built.properties(built.poster.rule)
        assert rule["EventBusName"] == ref(built.bus)
        assert rule["EventPattern"] == {
            "source": [RULES_SOURCE],
            "detail-type": [TRANSACTION_APPROVED],
        }

    def test_custom_approved_source(self, custom: Built) -> None:
        assert custom.properties(custom.poster.rule)["EventPattern"]["source"] == [
            "payments.manual-approval"
        ]

    def test_targets_the_queue_with_dead_letter_queue_and_retry_policy(self, built: Built) -> None:
        (target,) = built.properties(built.poster.rule)["Targets"]
        assert target["Arn"] == get_att(built.poster.queue)
        assert target["DeadLetterConfig"] == {"Arn": get_att(built.poster.dead_letter_queue)}
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": 8,
            "MaximumEventAgeInSeconds": 6 * 3600,
        }
        assert "InputTransformer" not in target  # the queue holds the whole event
        assert "Input" not in target

    def test_eventbridge_may_send_to_the_queue(self, built: Built) -> None:
        statements = built.queue_policy(built.poster.queue)
        sends = [s for s in statements if _events_may_send(s)]
        assert len(sends) == 1, statements
        assert sends[0]["Resource"] == get_att(built.poster.queue)

    def test_only_the_posting_rule_may_send_to_the_queue(self, built: Built) -> None:
        """Otherwise a rule in any account can put forged approvals in the posting queue."""
        (send,) = [s for s in built.queue_policy(built.poster.queue) if _events_may_send(s)]
        assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": get_att(built.poster.rule)}}

    def test_eventbridge_may_use_the_key_only_for_the_rules_of_the_bus(self, built: Built) -> None:
        """A statement for any source of the account would let EventBridge use the key for
        any rule or bus, and make the bus's own scoping moot (CDK's SQS target adds one)."""
        key_policy = built.properties(built.key)["KeyPolicy"]["Statement"]
        for_eventbridge = [
            s for s in key_policy if s.get("Principal") == {"Service": "events.amazonaws.com"}
        ]
        (statement,) = for_eventbridge
        assert set(statement["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        bus = built.bus.node.default_child
        assert isinstance(bus, events.CfnEventBus)
        source = statement["Condition"]["ArnLike"]["aws:SourceArn"]
        assert source["Fn::Join"][1][-1] == f":rule/{built.stack.resolve(bus.name)}/*"

    def test_the_rule_may_send_to_the_dead_letter_queue(self, built: Built) -> None:
        statements = built.queue_policy(built.poster.dead_letter_queue)
        built.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [ref(built.poster.dead_letter_queue)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Allow",
                                    "Action": "sqs:SendMessage",
                                    "Principal": {"Service": "events.amazonaws.com"},
                                    "Condition": {
                                        "ArnEquals": {"aws:SourceArn": get_att(built.poster.rule)}
                                    },
                                }
                            )
                        ]
                    )
                },
            },
        )
        assert len(statements) == 2  # TLS only, and the rule


class TestEventSource:
    def test_reads_the_queue_in_batches_reporting_item_failures(self, built: Built) -> None:
        mapping = built.event_source_mapping
        assert mapping["EventSourceArn"] == get_att(built.poster.queue)
        assert mapping["FunctionName"] == ref(built.poster.function)
        assert mapping["BatchSize"] == 10
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 100}
        assert "MaximumBatchingWindowInSeconds" not in mapping  # latency first
        assert mapping.get("Enabled", True) is True

    def test_custom_batching_and_concurrency(self, custom: Built) -> None:
        mapping = custom.event_source_mapping
        assert mapping["BatchSize"] == 100
        assert mapping["MaximumBatchingWindowInSeconds"] == 5
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 50}
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    @pytest.mark.parametrize(("fixture", "concurrency"), [("built", 100), ("custom", 50)])
    def test_the_function_reserves_what_the_queue_may_use_and_no_more(
        self, fixture: str, concurrency: int, request: pytest.FixtureRequest
    ) -> None:
        """max_concurrency bounds the queue's invocations; the reservation bounds every
        caller's and keeps that capacity for posting (NIST.800.53.R5-LambdaConcurrency)."""
        built: Built = request.getfixturevalue(fixture)
        assert built.event_source_mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency}
        function = built.properties(built.poster.function)
        assert function["ReservedConcurrentExecutions"] == concurrency


class TestTables:
    @pytest.mark.parametrize(
        ("child", "attribute"),
        [("LedgerJournal", "journal_table"), ("LedgerBalances", "balances_table")],
    )
    def test_ledger_tables(self, built: Built, child: str, attribute: str) -> None:
        properties = built.properties(built.cfn_child(child))
        assert properties["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
        (replica,) = properties["Replicas"]
        assert replica["SSESpecification"] == {"KMSMasterKeyId": get_att(built.key)}
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        table = getattr(built.poster, attribute)
        assert isinstance(table, dynamodb.TableBaseV2)
        assert table.encryption_key is built.key
        assert built.stack.resolve(table.table_name) == ref(built.cfn_child(child))

    def test_ledger_tables_are_keyed_as_the_ledger_declares_them(self, built: Built) -> None:
        """The template against ledger v2's own CreateTable requests: keys, attribute types
        and the expiry index the sweeper queries."""
        journal, balances = table_definitions("journal", "balances")
        for child, wanted in (("LedgerJournal", journal), ("LedgerBalances", balances)):
            properties = built.properties(built.cfn_child(child))
            assert properties["KeySchema"] == wanted["KeySchema"], child
            assert sorted(properties["AttributeDefinitions"], key=str) == sorted(
                wanted["AttributeDefinitions"], key=str
            ), child
            indexes = [
                {k: i[k] for k in ("IndexName", "KeySchema", "Projection")}
                for i in properties.get("GlobalSecondaryIndexes", [])
            ]
            assert indexes == wanted.get("GlobalSecondaryIndexes", []), child

    def test_idempotency_table(self, built: Built) -> None:
        properties = built.properties(built.cfn_child("IdempotencyTable"))
        assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": "expiration",
            "Enabled": True,
        }
        (replica,) = properties["Replicas"]
        assert replica["SSESpecification"] == {"KMSMasterKeyId": get_att(built.key)}
        table = built.poster.idempotency_table
        assert isinstance(table, dynamodb.TableBaseV2)
        assert table.encryption_key is built.key

    def test_tables_are_retained_by_default(self, built: Built) -> None:
        for child in ("LedgerJournal", "LedgerBalances", "IdempotencyTable"):
            resource = built.resources[logical_id(built.cfn_child(child))]
            assert resource["DeletionPolicy"] == "Retain", child
            assert resource["UpdateReplacePolicy"] == "Retain", child

    def test_existing_ledger_tables_are_used_as_is(self) -> None:
        stack = bare_stack()
        bus = events.EventBus(stack, "Bus")
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        journal, balances = (
            dynamodb.TableV2(
                stack,
                name,
                partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            )
            for name in ("Journal", "Balances")
        )
        poster = BufferedPoster(
            stack,
            "Posting",
            event_bus=bus,
            encryption_key=key,
            journal_table=journal,
            balances_table=balances,
        )
        template = Template.from_stack(stack)

        assert (poster.journal_table, poster.balances_table) == (journal, balances)
        assert poster.node.try_find_child("LedgerJournal") is None
        assert poster.node.try_find_child("LedgerBalances") is None
        template.resource_count_is("AWS::DynamoDB::GlobalTable", 3)  # 2 existing + idempotency
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": "payment_posting_functions.handlers.posting.handler",
                "Environment": {
                    "Variables": Match.object_like(
                        {
                            "LEDGER_JOURNAL_TABLE_NAME": ref(journal),
                            "LEDGER_BALANCES_TABLE_NAME": ref(balances),
                        }
                    )
                },
            },
        )

    def test_one_ledger_table_without_the_other_is_refused(self) -> None:
        stack = bare_stack()
        journal = dynamodb.TableV2(
            stack,
            "Journal",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        )
        with pytest.raises(ValueError, match="journal_table and balances_table together"):
            BufferedPoster(
                stack, "Posting", event_bus=events.EventBus(stack, "Bus"), journal_table=journal
            )


class TestFunction:
    def test_environment_for_the_ledger(self, built: Built) -> None:
        function = built.properties(built.poster.function)
        assert function["Handler"] == "payment_posting_functions.handlers.posting.handler"
        variables = function["Environment"]["Variables"]
        assert variables == {
            "POWERTOOLS_SERVICE_NAME": "posting",
            "POWERTOOLS_METRICS_NAMESPACE": "PaymentPosting",
            "POSTING_SYSTEM": "ledger",
            "LEDGER_JOURNAL_TABLE_NAME": ref(built.cfn_child("LedgerJournal")),
            "LEDGER_BALANCES_TABLE_NAME": ref(built.cfn_child("LedgerBalances")),
            "IDEMPOTENCY_TABLE_NAME": ref(built.cfn_child("IdempotencyTable")),
            "EVENT_BUS_NAME": ref(built.bus),
            "APPROVED_SOURCE": RULES_SOURCE,
            # The card lifecycle's defaults: 7 and 31 days, 20 %, wait until the 4th of the
            # queue's 5 receives.
            "HOLD_SECONDS": "604800",
            "LONG_HOLD_SECONDS": "2678400",
            "TIP_TOLERANCE_BPS": "2000",
            "ORIGINAL_WAIT_RECEIVES": "4",
        }
        assert function["TracingConfig"] == {"Mode": "PassThrough"}

    def test_the_lifecycle_settings_reach_the_function(self, custom: Built) -> None:
        variables = custom.properties(custom.poster.function)["Environment"]["Variables"]
        assert {name: variables[name] for name in (
            "HOLD_SECONDS", "LONG_HOLD_SECONDS", "TIP_TOLERANCE_BPS", "ORIGINAL_WAIT_RECEIVES"
        )} == {
            "HOLD_SECONDS": str(5 * 86_400),
            "LONG_HOLD_SECONDS": str(45 * 86_400),
            "TIP_TOLERANCE_BPS": "0",
            "ORIGINAL_WAIT_RECEIVES": "2",  # max_receive_count 3: wait through the 2nd
        }  # fmt: skip

    def test_environment_for_an_http_core_system(self, http: Built) -> None:
        variables = http.properties(http.poster.function)["Environment"]["Variables"]
        assert variables["POSTING_SYSTEM"] == "http"
        assert variables["CORE_BANKING_URL"] == CORE_BANKING_URL
        assert variables["IDEMPOTENCY_TABLE_NAME"] == ref(http.cfn_child("IdempotencyTable"))
        assert variables["EVENT_BUS_NAME"] == ref(http.bus)

    def test_the_poster_and_the_expiry_sweeper_are_its_functions(self, built: Built) -> None:
        built.template.resource_count_is("AWS::Lambda::Function", 2)
        assert built.poster.expiry_sweeper is not None

    def test_an_http_poster_has_no_sweeper(self, http: Built) -> None:
        http.template.resource_count_is("AWS::Lambda::Function", 1)
        assert http.poster.expiry_sweeper is None


class TestGrants:
    def test_may_write_the_ledger_but_never_delete_or_scan(self, built: Built) -> None:
        for child in ("LedgerJournal", "LedgerBalances"):
            arn = table_arn(built.cfn_child(child))
            on_ledger = allowed_actions(built.template, built.role_id, arn)
            assert on_ledger <= LEDGER_WRITES, on_ledger - LEDGER_WRITES

    def test_the_journal_is_put_only(self, built: Built) -> None:
        """Immutability as far as IAM can say it: entries are put (with attribute_not_exists,
        in code) and read, never updated or deleted."""
        journal = table_arn(built.cfn_child("LedgerJournal"))
        assert allowed_actions(built.template, built.role_id, journal) == {
            "dynamodb:PutItem",
            "dynamodb:GetItem",
        }

    def test_nothing_is_a_wildcard_and_only_idempotency_is_deleted(self, built: Built) -> None:
        everything = all_allowed_actions(built.template, built.role_id)
        assert not {"dynamodb:*", "*"} & everything
        # DeleteItem and Scan exist only on the idempotency table (Powertools deletes a
        # record when the posting fails, to let the retry through).
        idempotency = table_arn(built.cfn_child("IdempotencyTable"))
        for statement_actions, resources in (
            (s.actions, s.resources)
            for s in role_statements(built.template, built.role_id)
            if s.effect == "Allow" and {"dynamodb:DeleteItem", "dynamodb:Scan"} & set(s.actions)
        ):
            assert resources == (idempotency,), (statement_actions, resources)

    def test_may_put_events_on_the_bus_and_nothing_else_there(self, built: Built) -> None:
        assert allowed_actions(built.template, built.role_id, get_att(built.bus)) == {
            "events:PutEvents"
        }
        assert "events:*" not in all_allowed_actions(built.template, built.role_id)


class TestValidation:
    @pytest.mark.parametrize(
        ("props", "prop"),
        [
            pytest.param({"posting_system": "ftp"}, "posting_system", id="posting-system-ftp"),
            pytest.param({"posting_system": "http"}, "core_banking_url", id="http-without-url"),
            pytest.param(
                {"posting_system": "http", "core_banking_url": ""},
                "core_banking_url",
                id="http-with-empty-url",
            ),
            pytest.param({"batch_size": 0}, "batch_size", id="batch-size-0"),
            pytest.param({"batch_size": 20}, "batch_size", id="batch-size-20-no-window"),
            pytest.param({"batch_size": 10_001}, "batch_size", id="batch-size-10001"),
            pytest.param({"max_concurrency": 1}, "max_concurrency", id="max-concurrency-1"),
            pytest.param({"max_concurrency": 1001}, "max_concurrency", id="max-concurrency-1001"),
            pytest.param({"max_receive_count": 0}, "max_receive_count", id="max-receive-count-0"),
            pytest.param(
                {"max_receive_count": 1001}, "max_receive_count", id="max-receive-count-1001"
            ),
            pytest.param(
                {"hold_window": Duration.seconds(30)}, "hold_window", id="hold-window-30s"
            ),
            pytest.param(
                {"long_hold_window": Duration.seconds(0)}, "long_hold_window", id="long-hold-0"
            ),
            pytest.param({"tip_tolerance_bps": -1}, "tip_tolerance_bps", id="tolerance-minus"),
            pytest.param({"tip_tolerance_bps": 10_001}, "tip_tolerance_bps", id="tolerance-over"),
        ],
    )
    def test_refuses_with_the_prop_named(self, props: dict[str, Any], prop: str) -> None:
        stack = bare_stack()
        bus = events.EventBus(stack, "Bus")
        key = kms.Key(stack, "Key")
        with pytest.raises(ValueError, match=rf"BufferedPoster: .*\b{prop}\b"):
            BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key, **props)

    @pytest.mark.parametrize(
        "props",
        [
            pytest.param({"batch_size": 1}, id="batch-size-1"),
            pytest.param(
                {"batch_size": 10_000, "max_batching_window": Duration.seconds(1)},
                id="batch-size-10000-with-window",
            ),
            pytest.param({"max_concurrency": 2}, id="max-concurrency-2"),
            pytest.param({"max_concurrency": 1000}, id="max-concurrency-1000"),
            pytest.param({"max_receive_count": 1}, id="max-receive-count-1"),
            pytest.param({"max_receive_count": 1000}, id="max-receive-count-1000"),
        ],
    )
    def test_accepts_the_limits(self, props: dict[str, Any]) -> None:
        stack = bare_stack()
        bus = events.EventBus(stack, "Bus")
        key = kms.Key(stack, "Key")
        BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key, **props)


class TestMetrics:
    @pytest.mark.parametrize(
        ("method", "metric_name", "queue"),
        [
            ("metric_backlog", "ApproximateNumberOfMessagesVisible", "queue"),
            ("metric_oldest_message_age", "ApproximateAgeOfOldestMessage", "queue"),
            ("metric_dead_letter_messages", "ApproximateNumberOfMessagesVisible", "dlq"),
        ],
    )
    def test_queue_metrics(self, built: Built, method: str, metric_name: str, queue: str) -> None:
        metric = getattr(built.poster, method)()
        assert isinstance(metric, cloudwatch.Metric)
        assert metric.namespace == "AWS/SQS"
        assert metric.metric_name == metric_name
        assert metric.statistic == "Maximum"
        assert metric.period.to_seconds() == 60
        watched = built.poster.queue if queue == "queue" else built.poster.dead_letter_queue
        assert built.stack.resolve(metric.dimensions) == {
            "QueueName": get_att(watched, "QueueName")
        }
        custom = getattr(built.poster, method)(period=Duration.minutes(5))
        assert custom.period.to_seconds() == 300


def test_passes_aws_solutions_checks_on_its_own(built: Built) -> None:
    """The construct carries its own acknowledgements: reusable without the stack's."""
    report = cdk_nag.AwsSolutionsChecks().validate_scope(built.stack)
    assert report.success, [v.rule_name for v in report.violations]
    assert list(report.violations) == []


@pytest.mark.parametrize(("fixture", "reported"), [("built", False), ("http", True)])
def test_outside_a_vpc_is_accepted_only_when_posting_calls_aws_apis_alone(
    fixture: str, reported: bool, request: pytest.FixtureRequest
) -> None:
    """Posting over HTTP reaches a network the stack does not know: the PCI DSS pack asks."""
    built: Built = request.getfixturevalue(fixture)
    report = cdk_nag.PCIDSS321Checks().validate_scope(built.stack)
    flagged = {
        resource.construct_path
        for violation in report.violations
        if violation.rule_name == "PCI.DSS.321-LambdaInsideVPC"
        for resource in violation.violating_resources
    }
    assert (f"{built.poster.function.node.path}/Resource" in flagged) is reported
