"""BufferedPoster: approved transactions through a queue into the posting system, never faster
than it can take them.

    rule (TransactionApproved) ──▶ SQS buffer ──▶ posting function (bounded concurrency)
                                     │ after maxReceiveCount          │ TransactionPosted |
                                     └──▶ dead-letter queue (redrive)  │ PostingFailed ──▶ bus

The queues and the idempotency records are transaction data (``encryption_key``); the ledger
and the logs may have keys of their own (docs/adr/0010-keys-per-data-domain.md).

The posting system is a ``PostingTarget`` (payment_stack/posting_target.py): the built-in
ledger, or a core system over HTTPS with its credential in Secrets Manager, its CA, its
network placement and a retry budget that fits the function timeout.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

from aws_cdk import Annotations, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_posting_functions.domain.event_names import EventName
from payment_stack import dashboards
from payment_stack.alarms import (
    DEAD_LETTER_QUEUE,
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    OLDEST_MESSAGE_AGE_SECONDS,
    POSTING_FAILURES,
    AlarmSetting,
    AlarmThreshold,
    ConstructAlarms,
    powertools_metric,
)
from payment_stack.ca_bundle_layer import FUNCTION_PATH as CA_BUNDLE_FUNCTION_PATH
from payment_stack.ca_bundle_layer import ca_bundle_layer
from payment_stack.encrypted_table import customer_key_table
from payment_stack.event_sources import POSTING_SOURCE, RULES_SOURCE, grant_publish
from payment_stack.expiry_sweeper import DEFAULT_INTERVAL as DEFAULT_SWEEP_INTERVAL
from payment_stack.expiry_sweeper import EXPIRY_INDEX, ExpirySweeper
from payment_stack.grants import (
    chosen_actions,
    grant_consume,
    grant_key,
    grant_message_move,
    grant_read_messages,
    grant_table,
)
from payment_stack.keys import EVENTS_SERVICE, allow_bus_rules_to_encrypt, domain_key
from payment_stack.metrics import SUM_PER_MINUTE
from payment_stack.metrics import options as metric_options
from payment_stack.nag import (
    NIST_800_53_R5,
    acknowledge,
    acknowledge_in_packs,
    acknowledge_outside_vpc,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.posting_target import (
    HTTPS_PORT,
    CoreBankingNetwork,
    HttpSettings,
    PostingTarget,
)
from payment_stack.props import role as role_prop
from payment_stack.props import whole_number
from payment_stack.queues import (
    RULE_TARGET_MAX_EVENT_AGE,
    RULE_TARGET_RETRY_ATTEMPTS,
    dead_letter_queue,
)

TRANSACTION_APPROVED: str = EventName.TRANSACTION_APPROVED.value
# The card lifecycle's defaults (``BufferedPoster``'s hold_window, long_hold_window and
# tip_tolerance_bps).
DEFAULT_HOLD_WINDOW = Duration.days(7)
DEFAULT_LONG_HOLD_WINDOW = Duration.days(31)
DEFAULT_TIP_TOLERANCE_BPS = 2_000
# Little's law at the target rate of 1,100 postings a second (docs/scale.md): about 44 at the
# mean, 100 for the tail. Ledger v2 has no item every posting writes, and with a house shard
# leased per writer (128 shards) 100 writers do not conflict on house items (make
# bench-ledger). The account's Lambda concurrency quota must be at least 201 (Lambda keeps
# 100 unreserved; the expiry sweeper reserves 1).
DEFAULT_MAX_CONCURRENCY = 100
# Lambda's advice: a visibility timeout at least six times the function timeout, plus the
# batching window, so a batch still being retried by the event source is not handed to a
# second poller.
VISIBILITY_FACTOR = 6
# What ledger v2 does per posting (domain/ledger_v2/dynamodb.py): one TransactWriteItems that
# puts the transfer, its entries and, with a link, the link's index item in the journal, each
# with attribute_not_exists, and updates the balance items with ADD (a hold creates its
# pending's state item with an UpdateItem too, and a clearing, reversal or expiry updates it).
# A clearing or reversal reads the link and its original (GetItem on both tables). It reads
# the journal (GetItem) after a cancelled write, to tell a redelivery from a conflict; the
# balances (GetItem) for a house account's settings once per process, and for an account to name a
# refusal; a house account not yet open it opens with an UpdateItem (on first use). The
# journal is immutable as far as IAM can say it: no UpdateItem, no DeleteItem.
JOURNAL_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
BALANCES_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# What opening, freezing and closing an account calls (DynamoDBLedger.open_account and
# _set_status): an UpdateItem that creates or changes the account item, a GetItem to compare
# one already open with what was asked.
ACCOUNT_OPENING_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# What Powertools idempotency does (DynamoDBPersistenceLayer): a conditional PutItem claims
# the transaction (a failed condition returns the item, so no GetItem), an UpdateItem records
# the result, a DeleteItem releases the claim when posting failed.
IDEMPOTENCY_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# What the ledger's readers call (domain/ledger_v2/dynamodb.py), on both tables: an account,
# a transfer or a house balance (GetItem, and TransactGetItems which IAM checks as GetItem),
# an account's statement (Query), the trial balance from the balance items (Scan).
LEDGER_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
# The credentials' read (handlers/posting.py, SecretHeaderValue and SecretClientCertificate):
# the value and nothing else.
SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
# What Lambda does with the execution role to attach a function to a VPC (the actions of the
# AWSLambdaVPCAccessExecutionRole managed policy, written out).
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
# Beside the HTTP calls, a batch reads the secret, claims and records idempotency and publishes
# its events: what the HTTP worst case leaves of the function timeout for that, at least.
HTTP_BATCH_HEADROOM_SECONDS = 10
# The alarm kinds of ``BufferedPoster(alarms=...)`` and their defaults (docs/runbook.md).
ALARM_DEFAULTS: dict[str, AlarmThreshold] = {
    "dead_letter_queue": DEAD_LETTER_QUEUE,
    "oldest_message_age": OLDEST_MESSAGE_AGE_SECONDS,
    "posting_failures": POSTING_FAILURES,
    "function_errors": FUNCTION_ERRORS,
    "function_throttles": FUNCTION_THROTTLES,
}
# The posting function's Powertools metrics (handlers/posting.py): one PostingFailed outcome
# (a refusal by the posting system), and milliseconds from the authorization's transmission
# time to the outcome, for every terminal outcome.
POSTINGS_FAILED_METRIC = "PostingsFailed"
END_TO_END_LATENCY_METRIC = "EndToEndLatency"
# One count per outcome (``Outcome`` + PostingOutcome's value, title case): written out, the
# constructs do not import the functions' domain (pydantic); a test holds them equal.
POSTING_OUTCOMES = ("Posted", "Held", "Cleared", "Voided", "Corrected", "Reversed")


class BufferedPoster(Construct):
    """Posts approved transactions once each, at a pace the posting system can take."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey | None = None,
        ledger_key: kms.IKey | None = None,
        operations_key: kms.IKey | None = None,
        posting_target: PostingTarget | None = None,
        posting_system: str | None = None,
        core_banking_url: str | None = None,
        journal_table: dynamodb.ITableV2 | None = None,
        balances_table: dynamodb.ITableV2 | None = None,
        batch_size: int = 10,
        max_batching_window: Duration | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_receive_count: int = 5,
        function_timeout: Duration | None = None,
        approved_source: str = RULES_SOURCE,
        expiry_sweep_interval: Duration = DEFAULT_SWEEP_INTERVAL,
        hold_window: Duration = DEFAULT_HOLD_WINDOW,
        long_hold_window: Duration = DEFAULT_LONG_HOLD_WINDOW,
        tip_tolerance_bps: int = DEFAULT_TIP_TOLERANCE_BPS,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        role: iam.IRole | None = None,
        sweeper_role: iam.IRole | None = None,
        alarms: AlarmSetting = True,
        alarm_topic: sns.ITopic | None = None,
        dashboard: bool | cloudwatch.Dashboard = True,
    ) -> None:
        """
        :param encryption_key: for the buffer queue, its dead-letter queue and the idempotency
            records: approved transactions. Default: a new key with yearly rotation.
        :param ledger_key: for new ledger tables. Default: ``encryption_key``.
        :param operations_key: for the function's log group. Default: ``encryption_key``.
        :param posting_target: ``PostingTarget.ledger()`` (default: the built-in double-entry
            ledger on DynamoDB) or ``PostingTarget.http(url, ...)`` (a core-banking API over
            HTTPS; no ledger tables then).
        :param posting_system: deprecated: ``posting_target`` (``"http"`` with
            ``core_banking_url`` is ``PostingTarget.http(core_banking_url)``).
        :param journal_table: an existing ledger v2 journal table (``pk``/``sk`` strings),
            given together with ``balances_table``, ledger target only. Default: a new
            TableV2 with point-in-time recovery, encrypted with ``ledger_key``.
        :param balances_table: an existing ledger v2 balances table (``pk``/``sk`` strings and
            the ``expiry`` index on ``expiryBucket``/``expiresAt``), given together with
            ``journal_table``. Default: a new TableV2 like the journal, with that index.
        :param batch_size: messages per invocation, 1 to 10,000 (over 10 needs a batching
            window). Default 10.
        :param max_batching_window: how long to gather a batch. Default: none (latency first).
        :param max_concurrency: the most concurrent invocations, 2 to 1,000: the posting
            system never sees more parallel callers than this, and the function reserves as
            many (Lambda keeps 100 unreserved: the account's concurrency quota must be at
            least this plus 101 with the ledger's expiry sweeper). Default 100: what 1,100
            postings a second need with room for the latency tail (docs/scale.md).
        :param max_receive_count: deliveries before a message moves to the dead-letter queue,
            1 to 1,000. Default 5 (a few tries, then a person looks).
        :param function_timeout: default 30 seconds for the ledger; for HTTP, the batch's
            worst case (batch_size times the target's retry budget) plus 10 seconds. The
            queue's visibility is six times it.
        :param role: the posting function's execution role, assumable by
            ``lambda.amazonaws.com``. Default: a new role. Given, it gets what the function
            needs added to its policy (consume the queue, the ledger and idempotency tables,
            put events; for HTTP, read the credential's secret and, in a VPC, the network
            interface actions); imported with ``mutable=False`` it gets nothing, and you grant
            those yourself. No cdk-nag finding is acknowledged on a role you give.
        :param expiry_sweep_interval: ledger target only: how often the expiry sweeper
            (``expiry_sweeper``) releases pending transfers past their timeout, at least a
            minute. Default one minute.
        :param sweeper_role: the expiry sweeper's execution role, as ``role`` is the posting
            function's. Default: a new role.
        :param hold_window: how long an authorization's hold waits for its clearing before
            the sweeper releases it (``HoldExpired``). Default 7 days.
        :param long_hold_window: the same for hotels, car rental and cruise lines, which
            clear weeks after they authorize (``card_message.hold_seconds`` lists the merchant
            categories). Default 31 days.
        :param tip_tolerance_bps: how far above its authorization a clearing posts without
            being forced, in basis points of the authorized amount. Default 2,000 (20 %).
        :param alarms: ``True`` (default): every alarm below at its default; ``False``: none;
            or a mapping of kind to an ``AlarmThreshold`` (replaces the default) or ``None``
            (turns the kind off). Kinds: ``dead_letter_queue`` (the buffer's and the expiry
            sweeper's dead-letter queues, any message visible, 1 minute),
            ``oldest_message_age`` (the buffer's ApproximateAgeOfOldestMessage, Maximum at
            least 300 seconds for 3 minutes in a row), ``posting_failures`` (the posting
            function's ``PostingsFailed``, refusals by the posting system, at least 10 in 5
            minutes), ``function_errors`` and ``function_throttles`` (the posting function and
            the sweeper, at least 1 in 5 minutes). See docs/runbook.md.
        :param alarm_topic: the SNS topic the alarms notify (alarm and OK). Default: a new
            topic encrypted with ``operations_key`` (or ``encryption_key``), TLS only, that
            only this stack's alarms may publish to. A topic you give must let
            ``cloudwatch.amazonaws.com`` publish (``payment_stack.alarms.allow_alarms_to_publish``).
        :param dashboard: True: a CloudWatch dashboard of the stage (``<stack>-<construct
            path>``); a ``Dashboard``: the stage's section on it (the stack puts the three
            stages on one); False: none. It shows
            approvals in, outcomes by type, end-to-end latency, the buffer, dead-letter
            queues, failures. Default True.
        """
        super().__init__(scope, construct_id)
        for name, value in (
            ("batch_size", batch_size),
            ("max_concurrency", max_concurrency),
            ("max_receive_count", max_receive_count),
        ):
            whole_number("BufferedPoster", name, value)
        role_prop("BufferedPoster", "role", role, "lambda")
        role_prop("BufferedPoster", "sweeper_role", sweeper_role, "lambda")
        target = _target(posting_target, posting_system, core_banking_url)
        _validate(batch_size, max_batching_window, max_concurrency, max_receive_count)
        http = target.http_settings
        given_tables = (journal_table, balances_table)
        if http is not None and (
            any(given_tables) or ledger_key is not None or sweeper_role is not None
        ):
            raise ValueError(
                "BufferedPoster: journal_table, balances_table, ledger_key and sweeper_role "
                "apply to PostingTarget.ledger() only; an HTTP target has no ledger tables"
            )
        if (journal_table is None) != (balances_table is None):
            raise ValueError(
                "BufferedPoster: give journal_table and balances_table together (the ledger "
                "keeps its entries in one and its balances in the other), or neither"
            )
        timeout = _timeout(function_timeout, http, batch_size)
        encryption_key = self.encryption_key = encryption_key or domain_key(
            self,
            "Key",
            description="Encrypts approved transactions waiting to post, and their outcomes",
            removal_policy=removal_policy,
        )
        allow_bus_rules_to_encrypt(self, encryption_key, event_bus)

        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", encryption_key, removal_policy, behind_a_queue=True
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(
                timeout.to_seconds() * VISIBILITY_FACTOR
                + (max_batching_window.to_seconds() if max_batching_window else 0)
            ),
            # Shorter than the DLQ's 14 days: a message keeps its first enqueue time when it
            # moves there, so the DLQ must outlive the buffer to keep it for inspection.
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
            removal_policy=removal_policy,
        )
        # The redrive path: the DLQ keeps SQS's default redrive-allow policy, so its messages
        # can be moved back to this queue (StartMessageMoveTask) once the cause is fixed.

        self.posting_target = target
        # The ledger's tables exist for the ledger target only (ledger v2, issue 11): the
        # journal, immutable, and the balances.
        self.journal_table: dynamodb.ITableV2 | None = None
        self.balances_table: dynamodb.ITableV2 | None = None
        if http is None:
            self.journal_table = journal_table or _ledger_table(
                self, "LedgerJournal", ledger_key or encryption_key, removal_policy
            )
            self.balances_table = balances_table or _ledger_table(
                self,
                "LedgerBalances",
                ledger_key or encryption_key,
                removal_policy,
                global_secondary_indexes=[
                    dynamodb.GlobalSecondaryIndexPropsV2(
                        index_name=EXPIRY_INDEX,
                        partition_key=_string("expiryBucket"),
                        sort_key=_string("expiresAt"),
                        projection_type=dynamodb.ProjectionType.ALL,
                    )
                ],
            )
        self.idempotency_table = customer_key_table(
            self,
            "IdempotencyTable",
            encryption_key=encryption_key,
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            removal_policy=removal_policy,
        )

        environment = {
            "POSTING_SYSTEM": target.kind.value,
            **_ledger_environment(self.journal_table, self.balances_table),
            "IDEMPOTENCY_TABLE_NAME": self.idempotency_table.table_name,
            "EVENT_BUS_NAME": event_bus.event_bus_name,
            # The function posts only what this source approved (the rule filters on it too).
            "APPROVED_SOURCE": approved_source,
            **(_http_environment(http) if http else {}),
            **_lifecycle_environment(
                hold_window, long_hold_window, tip_tolerance_bps, max_receive_count
            ),
        }
        self.security_group: ec2.ISecurityGroup | None = None
        network = http.network if http else None
        if network is not None:
            self.security_group = _core_banking_security_group(self, network)
        poster = PaymentFunction(
            self,
            "Poster",
            handler="payment_posting_functions.handlers.posting.handler",
            description="Posting function: approved transactions into the posting system",
            service_name="posting",
            environment=environment,
            timeout=timeout,
            # The event source's maximum concurrency stops the queue from invoking more; the
            # reservation makes it the ceiling for every caller and keeps that much capacity
            # for posting whatever else in the account scales up.
            reserved_concurrent_executions=max_concurrency,
            log_retention=log_retention,
            log_removal_policy=removal_policy,
            log_encryption_key=operations_key or encryption_key,
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[self.security_group] if self.security_group else None,
            role=role,
        )
        self.function = poster.function
        self.expiry_sweeper: ExpirySweeper | None = None
        if self.journal_table is not None and self.balances_table is not None:
            grant_table(self.journal_table, poster.role, *JOURNAL_ACTIONS)
            grant_table(self.balances_table, poster.role, *BALANCES_ACTIONS)
            self.expiry_sweeper = ExpirySweeper(
                self,
                "ExpirySweeper",
                journal_table=self.journal_table,
                balances_table=self.balances_table,
                # Its failed sweeps name ledger items: the ledger's key, as the tables'.
                encryption_key=ledger_key or encryption_key,
                log_encryption_key=operations_key or encryption_key,
                interval=expiry_sweep_interval,
                log_retention=log_retention,
                removal_policy=removal_policy,
                role=sweeper_role,
                event_bus=event_bus,
            )
        if http is not None:
            _grant_http(self, http, poster.role, acknowledge_vpc_access=poster.owns_role)
            if http.ca_bundle is not None and http.ca_bundle.known_at_synth:
                self.function.add_layers(ca_bundle_layer(self, "CoreBankingCa", http.ca_bundle.pem))
        grant_table(self.idempotency_table, poster.role, *IDEMPOTENCY_ACTIONS)
        grant_publish(event_bus, poster.role, [POSTING_SOURCE])
        # The mapping SqsEventSource would make (same id), without its grant: that one adds
        # ChangeMessageVisibility, GetQueueUrl and the key's wildcards, which Lambda never uses.
        self.function.add_event_source_mapping(
            f"SqsEventSource:{Names.node_unique_id(self.queue.node)}",
            event_source_arn=self.queue.queue_arn,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            max_concurrency=max_concurrency,
            # Without this, the failures the function reports are ignored and the whole
            # batch is retried: good postings again, and the poison one forever.
            report_batch_item_failures=True,
        )
        grant_consume(self.queue, poster.role)

        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=event_bus,
            description="Approved transactions into the posting buffer",
            event_pattern=events.EventPattern(
                source=[approved_source], detail_type=[TRANSACTION_APPROVED]
            ),
        )
        # The target is given the queue without its key: for an encrypted queue, CDK's target
        # grants EventBridge the key for any source in the account (a rule ARN in the key
        # policy would be a dependency cycle), which would make the bus statement's scoping
        # moot. The key policy allows the rules of this bus instead (allow_bus_rules_to_encrypt)
        # and the queue policy this rule, below.
        self.rule.add_target(
            targets.SqsQueue(
                sqs.Queue.from_queue_arn(self, "QueueAsRuleTarget", self.queue.queue_arn),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=RULE_TARGET_RETRY_ATTEMPTS,
                max_event_age=RULE_TARGET_MAX_EVENT_AGE,
            )
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ThePostingRuleDelivers",
                principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.rule_arn}},
            )
        )
        # And no other rule, whatever another statement allows: a forged approval from any
        # other rule of the account must not reach the buffer.
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThePostingRuleDelivers",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:SourceArn": self.rule.rule_arn}},
            )
        )
        acknowledge_in_packs(
            self.function,
            "LambdaDLQ",
            "The SQS event source invokes this function synchronously; a function dead-letter "
            "queue applies to asynchronous invocations only, and a message still failing after "
            "max_receive_count receives moves to the buffer's own dead-letter queue.",
            packs=(NIST_800_53_R5,),
        )
        if http is None:
            # An HTTP posting system is reached over the network: whether the function needs a
            # VPC to get there is the deployer's decision, so the packs keep asking.
            acknowledge_outside_vpc(
                self.function,
                ("dynamodb", "events", "kms", "logs", "sqs", "xray"),
                own_role=poster.owns_role,
            )

        self.event_bus = event_bus
        self.approved_source = approved_source
        self._warn_if_another_poster_takes_the_same_approvals()
        self._service_name = poster.service_name
        self.alarms = ConstructAlarms(
            self,
            "BufferedPoster",
            alarms,
            ALARM_DEFAULTS,
            topic=alarm_topic,
            key=operations_key or encryption_key,
        )
        self._alarm()
        self.dashboard: cloudwatch.Dashboard | None = (
            self._dashboard(dashboards.given(dashboard)) if dashboard else None
        )

    @property
    def alarm_topic(self) -> sns.ITopic | None:
        """The topic the alarms notify (None when every alarm is turned off)."""
        return self.alarms.topic

    def _dead_letter_queues(self) -> list[tuple[str | None, sqs.IQueue, str]]:
        queues: list[tuple[str | None, sqs.IQueue, str]] = [
            (None, self.dead_letter_queue, "approved transactions that failed every "
             "delivery to the posting system, or that the rule could not put in the buffer"),
        ]  # fmt: skip
        if self.expiry_sweeper is not None:
            queues.append(
                ("ExpirySweeper", self.expiry_sweeper.dead_letter_queue,
                 "invocation records of sweeps that failed (holds not released on time)"),
            )  # fmt: skip
        return queues

    def _functions(self) -> list[tuple[str, lambda_.IFunction]]:
        functions: list[tuple[str, lambda_.IFunction]] = [("Poster", self.function)]
        if self.expiry_sweeper is not None:
            functions.append(("ExpirySweeper", self.expiry_sweeper.function))
        return functions

    def _alarm(self) -> None:
        for name, queue, holds in self._dead_letter_queues():
            self.alarms.dead_letter_queue(name, queue, holds)
        self.alarms.add(
            "oldest_message_age",
            "Buffer-OldestMessageAge",
            self.metric_oldest_message_age(),
            "The oldest approved transaction in the posting buffer has waited too long "
            "(seconds): the posting system does not keep up. See docs/runbook.md.",
        )
        self.alarms.add(
            "posting_failures",
            "PostingsFailed",
            self.metric_posting_failures(),
            "The posting system refused postings (PostingFailed outcomes). See docs/runbook.md.",
        )
        for name, function in self._functions():
            self.alarms.function(name, function)

    def _dashboard(self, into: cloudwatch.Dashboard | None) -> cloudwatch.Dashboard:
        board = dashboards.stage_dashboard(
            self,
            "Posting",
            "TransactionApproved → rule → SQS buffer → posting function → posting system → "
            "TransactionPosted, AuthorizationHeld, ClearingMatched, ReversalApplied, PostingFailed",
            into=into,
        )
        service = self._service_name
        outcomes = [
            dashboards.labelled(powertools_metric(service, f"Outcome{outcome}"), outcome)
            for outcome in POSTING_OUTCOMES
        ]
        board.add_widgets(
            dashboards.graph(
                "Approved transactions in",
                [self.queue.metric_number_of_messages_sent(statistic="Sum", label="Buffered")],
            ),
            dashboards.graph(
                "Outcomes by type",
                [*outcomes, self.metric_posting_failures(label="Failed (refused)")],
            ),
            dashboards.percentiles(
                "End-to-end latency (ms, authorization to outcome)",
                lambda stat: self.metric_end_to_end_latency(statistic=stat, label=stat),
            ),
        )  # fmt: skip
        board.add_widgets(
            dashboards.graph(
                "Buffer",
                [
                    self.metric_backlog(label="Messages waiting"),
                    self.metric_oldest_message_age(label="Oldest message age (s)"),
                ],
                unit_label="messages / seconds",
            ),
            dashboards.queue_depths(
                [(name or "Posting", queue) for name, queue, _ in self._dead_letter_queues()]
            ),
            dashboards.graph(
                "Failures",
                [
                    *(metric
                      for name, function in self._functions()
                      for metric in (
                          function.metric_errors(statistic="Sum", label=f"{name} errors"),
                          function.metric_throttles(statistic="Sum", label=f"{name} throttles"),
                      )),
                    dashboards.labelled(powertools_metric(service, "PostingRetries"), "Retries"),
                    dashboards.labelled(powertools_metric(service, "EventsRefused"),
                                        "Events the bus refused"),
                ],
            ),
        )  # fmt: skip
        if self.alarms.alarms:
            board.add_widgets(dashboards.alarm_states(self.alarms.alarms))
        return board

    def _subscription(self) -> str:
        bus = Stack.of(self).resolve(self.event_bus.event_bus_name)
        return json.dumps([bus, self.approved_source], sort_keys=True)

    def _warn_if_another_poster_takes_the_same_approvals(self) -> None:
        # Both would post every approved transaction: against one ledger the second is an
        # idempotent repeat, against two systems it is a double posting. Legitimate only for a
        # deliberate fan-out, so a warning rather than an error.
        others = [
            other.node.path
            for other in self.node.root.node.find_all()
            if isinstance(other, BufferedPoster)
            and other is not self
            and other._subscription() == self._subscription()
        ]
        if others:
            Annotations.of(self).add_warning_v2(
                "payment-posting:second-poster",
                f"another BufferedPoster ({', '.join(others)}) already takes the approvals of "
                f"source {self.approved_source!r} on this bus: each approved transaction would be "
                "posted by both. Give each poster its own approved_source or bus, unless you "
                "mean to post every transaction twice.",
            )

    def grant_read_ledger(self, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
        """Let ``grantee`` read the built-in ledger (reporting, reconciliation): transfers,
        accounts and balances, an account's statement, the trial balance.

        ``actions``: among GetItem, Query and Scan (default all three), on the journal and the
        balances tables, and the ledger key's Decrypt through DynamoDB.
        ``PostingTarget.ledger()`` only: an HTTP target has no ledger tables.
        """
        if self.journal_table is None or self.balances_table is None:
            raise ValueError(
                "BufferedPoster: grant_read_ledger applies to PostingTarget.ledger(); this "
                "poster posts to an HTTP core system and has no ledger tables"
            )
        chosen = chosen_actions(
            "BufferedPoster", "a reader of the ledger", actions, LEDGER_READ_ACTIONS
        )
        return grant_table(self.journal_table, grantee, *chosen).combine(
            grant_table(self.balances_table, grantee, *chosen)
        )

    def grant_open_accounts(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` open, freeze and close accounts in the built-in ledger (the bank's
        account sync, the sample source of a dev stage): ``DynamoDBLedger.open_account`` and
        friends, an UpdateItem that creates the account item and a GetItem to compare an
        account already open, on the balances table, with the ledger key through DynamoDB.

        UpdateItem on the balances table is also what posting needs: a grantee can change
        balances, so give this to what you trust with the ledger. ``PostingTarget.ledger()``
        only. House accounts need nobody: the ledger opens them on first use.
        """
        if self.balances_table is None:
            raise ValueError(
                "BufferedPoster: grant_open_accounts applies to PostingTarget.ledger(); this "
                "poster posts to an HTTP core system and has no ledger tables"
            )
        return grant_table(self.balances_table, grantee, *ACCOUNT_OPENING_ACTIONS)

    def grant_read_dead_letters(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` look at the approved transactions that failed every delivery
        (ReceiveMessage, GetQueueAttributes, the key's Decrypt through SQS). A message received
        is hidden for the queue's visibility timeout, then visible again: nothing is taken."""
        return grant_read_messages(self.dead_letter_queue, grantee)

    def grant_redrive(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` move the dead letters back into the buffer once the cause is fixed:
        SQS's dead-letter queue redrive (StartMessageMoveTask, without ``DestinationArn`` or
        with the buffer's ARN), and follow or cancel it (ListMessageMoveTasks,
        CancelMessageMoveTask).

        What the SQS Developer Guide lists as a redrive's minimum permissions: on the
        dead-letter queue those three and ReceiveMessage, DeleteMessage, GetQueueAttributes;
        on the buffer SendMessage; the key's Decrypt and GenerateDataKey through SQS. The
        messages may go to the buffer only.
        """
        return grant_message_move(self.dead_letter_queue, self.queue, grantee)

    # ``props`` of every metric_* method: any ``cloudwatch.MetricOptions`` field, over the
    # defaults (1 minute, Maximum).

    def metric_backlog(self, **props: Any) -> cloudwatch.Metric:
        """Approved transactions waiting to be posted. A steady rise means the posting system
        (or max_concurrency) is the bottleneck."""
        return self.queue.metric_approximate_number_of_messages_visible(**metric_options(**props))

    def metric_oldest_message_age(self, **props: Any) -> cloudwatch.Metric:
        """Seconds the oldest approved transaction has waited: the posting delay customers see."""
        return self.queue.metric_approximate_age_of_oldest_message(**metric_options(**props))

    def metric_dead_letter_messages(self, **props: Any) -> cloudwatch.Metric:
        """Transactions that failed every delivery; alarm on any."""
        return self.dead_letter_queue.metric_approximate_number_of_messages_visible(
            **metric_options(**props)
        )

    def metric_posting_failures(self, **props: Any) -> cloudwatch.Metric:
        """Postings the posting system refused for good (each a ``PostingFailed`` event);
        ``props`` default: 1 minute, Sum."""
        metric = powertools_metric(self._service_name, POSTINGS_FAILED_METRIC)
        return metric.with_(**metric_options(SUM_PER_MINUTE, **props))

    def metric_end_to_end_latency(self, **props: Any) -> cloudwatch.Metric:
        """Milliseconds from an authorization's transmission time to its posting outcome
        (any terminal outcome of the posting function); ``props`` default: 1 minute,
        Maximum (give ``statistic="p99"`` for the tail)."""
        metric = powertools_metric(self._service_name, END_TO_END_LATENCY_METRIC, "Maximum")
        return metric.with_(**metric_options(**props))

    def metric_posting_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed invocations of the posting function (whole batches that raised)."""
        return self.function.metric_errors(**metric_options(SUM_PER_MINUTE, **props))


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def _ledger_table(
    scope: Construct,
    construct_id: str,
    key: kms.IKey,
    removal_policy: RemovalPolicy,
    **props: Any,
) -> dynamodb.ITableV2:
    """A ledger v2 table, keyed as ``ledger_v2.dynamodb.table_definitions`` declares."""
    return customer_key_table(
        scope,
        construct_id,
        encryption_key=key,
        partition_key=_string("pk"),
        sort_key=_string("sk"),
        removal_policy=removal_policy,
        **props,
    )


def _lifecycle_environment(
    hold_window: Duration, long_hold_window: Duration, tip_tolerance_bps: int, receives: int
) -> dict[str, str]:
    """The card lifecycle's settings (``handlers/posting.py``, ``lifecycle_settings``)."""
    holds = {"hold_window": hold_window, "long_hold_window": long_hold_window}
    for name, window in holds.items():
        if window.to_seconds() < 60:
            raise ValueError(f"BufferedPoster: {name} must be at least a minute")
    if not 0 <= tip_tolerance_bps <= 10_000:
        raise ValueError("BufferedPoster: tip_tolerance_bps must be between 0 and 10,000")
    return {
        "HOLD_SECONDS": str(int(hold_window.to_seconds())),
        "LONG_HOLD_SECONDS": str(int(long_hold_window.to_seconds())),
        "TIP_TOLERANCE_BPS": str(tip_tolerance_bps),
        # A clearing or reversal that overtook its original waits for it until the receive
        # before the last: then it is posted forced or fails, instead of dead-lettering.
        "ORIGINAL_WAIT_RECEIVES": str(max(1, receives - 1)),
    }


def _ledger_environment(
    journal: dynamodb.ITableV2 | None, balances: dynamodb.ITableV2 | None
) -> dict[str, str]:
    """What handlers/posting.py reads to build the ledger adapter."""
    if journal is None or balances is None:
        return {}
    return {
        "LEDGER_JOURNAL_TABLE_NAME": journal.table_name,
        "LEDGER_BALANCES_TABLE_NAME": balances.table_name,
    }


def _target(
    posting_target: PostingTarget | None, posting_system: str | None, core_banking_url: str | None
) -> PostingTarget:
    """The target, from ``posting_target`` or the deprecated string form."""
    if posting_system is None and core_banking_url is None:
        target = posting_target or PostingTarget.ledger()
        if not isinstance(target, PostingTarget):
            raise TypeError(
                f"BufferedPoster: posting_target must be a PostingTarget "
                f"(PostingTarget.ledger() or PostingTarget.http(...)), got {target!r}"
            )
        return target
    if posting_target is not None:
        raise ValueError(
            "BufferedPoster: give posting_target alone (posting_system and core_banking_url "
            "are its deprecated form)"
        )
    warnings.warn(
        "BufferedPoster: posting_system and core_banking_url are deprecated; use "
        "posting_target=PostingTarget.ledger() or PostingTarget.http(url, ...)",
        DeprecationWarning,
        stacklevel=3,
    )
    if posting_system in (None, "ledger") and core_banking_url is None:
        return PostingTarget.ledger()
    if posting_system == "http":
        if not core_banking_url:
            raise ValueError("BufferedPoster: posting_system 'http' needs core_banking_url")
        return PostingTarget.http(core_banking_url)
    raise ValueError(
        f"BufferedPoster: posting_system must be 'ledger' or 'http' (with core_banking_url), "
        f"got {posting_system!r}"
    )


def _timeout(
    function_timeout: Duration | None, http: HttpSettings | None, batch_size: int
) -> Duration:
    """The function timeout; for HTTP, one a whole batch of worst cases fits in."""
    if http is None:
        return function_timeout or Duration.seconds(30)
    per_posting = http.worst_case_seconds()
    batch_worst_case = batch_size * per_posting
    if function_timeout is None:
        seconds = math.ceil(batch_worst_case) + HTTP_BATCH_HEADROOM_SECONDS
        if seconds > 900:
            raise ValueError(
                f"BufferedPoster: a batch of {batch_size} postings may take "
                f"{batch_worst_case:.1f} s at worst ({http.attempts} attempts x "
                f"{_seconds(http.request_timeout)} s read + "
                f"{_seconds(http.connect_timeout)} s connect, plus backoff, each), more "
                f"than Lambda's 900 s: lower batch_size, attempts or the timeouts"
            )
        return Duration.seconds(seconds)
    limit = function_timeout.to_seconds()  # Lambda takes whole seconds
    if batch_worst_case >= limit:
        raise ValueError(
            f"BufferedPoster: function_timeout {limit} s is too short for the HTTP retry "
            f"budget: batch_size {batch_size} x {per_posting:.1f} s per posting at worst "
            f"({http.attempts} attempts x ({_seconds(http.request_timeout)} s read + "
            f"{_seconds(http.connect_timeout)} s connect) + backoff) = "
            f"{batch_worst_case:.1f} s; a batch cut off by the timeout is retried whole. "
            f"Raise function_timeout, or lower batch_size, attempts or the timeouts"
        )
    return function_timeout


def _http_environment(http: HttpSettings) -> dict[str, str]:
    """What handlers/posting.py reads to build the adapter: no secret, only its ARN."""
    environment = {
        "CORE_BANKING_URL": http.url,
        "CORE_BANKING_TIMEOUT_SECONDS": _seconds(http.request_timeout),
        "CORE_BANKING_CONNECT_TIMEOUT_SECONDS": _seconds(http.connect_timeout),
        "CORE_BANKING_ATTEMPTS": str(http.attempts),
        "CORE_BANKING_BACKOFF_SECONDS": _seconds(http.backoff),
        "CORE_BANKING_409_MEANS": http.on_409.value,
    }
    if http.ca_bundle is not None:
        if http.ca_bundle.known_at_synth:
            # The PEM is a file in a layer of the function's own (ca_bundle_layer): any size.
            environment["CORE_BANKING_CA_BUNDLE_FILE"] = CA_BUNDLE_FUNCTION_PATH
        else:
            # Resolved at deploy time (a parameter): only the environment can carry it.
            environment["CORE_BANKING_CA_BUNDLE"] = http.ca_bundle.pem
    if http.credentials is not None:
        environment["CORE_BANKING_SECRET_ARN"] = http.credentials.secret.secret_arn
        environment["CORE_BANKING_CREDENTIALS_HEADER"] = http.credentials.header_name
        environment["CORE_BANKING_CREDENTIALS_PREFIX"] = http.credentials.value_prefix
    if http.client_certificate is not None:
        environment["CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN"] = (
            http.client_certificate.secret.secret_arn
        )
    return environment


def _seconds(duration: Duration) -> str:
    return f"{duration.to_milliseconds() / 1000:g}"  # 0.2, 3: what float() reads back


def _core_banking_security_group(
    scope: Construct, network: CoreBankingNetwork
) -> ec2.SecurityGroup:
    port = network.core_system_port or HTTPS_PORT
    group = ec2.SecurityGroup(
        scope,
        "PosterSecurityGroup",
        vpc=network.vpc,
        # A group's description cannot change without replacing the group: kept as it was for
        # the HTTPS port.
        description=f"Posting function: out on {port} to the core system (and AWS endpoints "
        "on 443) only"
        if port != HTTPS_PORT
        else "Posting function: out on 443 to the core system (and AWS endpoints) only",
        # No egress but what is added below: the function talks TLS to the core system.
        allow_all_outbound=False,
    )
    group.add_egress_rule(network.core_system, ec2.Port.tcp(port), "core banking API")
    for endpoint in network.aws_endpoints:
        group.add_egress_rule(endpoint, ec2.Port.tcp(HTTPS_PORT), "AWS API endpoint")
    return group


def _grant_http(
    scope: Construct, http: HttpSettings, role: iam.IRole, *, acknowledge_vpc_access: bool
) -> None:
    secrets = [holder.secret for holder in (http.credentials, http.client_certificate) if holder]
    for secret in secrets:
        # The full ARN when known; an imported secret's partial ARN with the suffix Secrets
        # Manager appends (six characters), as CDK's own grant does.
        arn = secret.secret_full_arn or f"{secret.secret_arn}-??????"
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SECRET_ACTIONS), resources=[arn])
        )
        if secret.encryption_key is not None:
            grant_key(secret.encryption_key, role, "secretsmanager", ("kms:Decrypt",))
    if http.network is not None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(VPC_ACCESS_ACTIONS), resources=["*"])
        )
        if not acknowledge_vpc_access:
            return  # a role given is the user's to acknowledge (payment_function.py)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Lambda attaches the function to its subnets with the execution role: the ec2 "
            "network-interface actions AWS documents for it (AWSLambdaVPCAccessExecutionRole), "
            "whose Describe actions support no resource-level permission.",
        )


def _validate(
    batch_size: int,
    max_batching_window: Duration | None,
    max_concurrency: int,
    max_receive_count: int,
) -> None:
    if not 1 <= batch_size <= 10_000:
        raise ValueError(f"BufferedPoster: batch_size must be 1 to 10000, got {batch_size}")
    if batch_size > 10 and max_batching_window is None:
        raise ValueError(
            "BufferedPoster: a batch_size over 10 needs a max_batching_window (an SQS rule)"
        )
    if not 2 <= max_concurrency <= 1_000:
        raise ValueError(
            f"BufferedPoster: max_concurrency must be 2 to 1000 (the SQS event source "
            f"limits), got {max_concurrency}"
        )
    if not 1 <= max_receive_count <= 1_000:
        raise ValueError(
            f"BufferedPoster: max_receive_count must be 1 to 1000, got {max_receive_count}"
        )
