"""BufferedPoster: approved transactions through a queue into the posting system, never faster
than it can take them.

    rule (TransactionApproved) ──▶ SQS buffer ──▶ posting function (bounded concurrency)
                                     │ after maxReceiveCount          │ TransactionPosted |
                                     └──▶ dead-letter queue (redrive)  │ PostingFailed ──▶ bus

The queues and the idempotency records are transaction data (``encryption_key``); the ledger
and the logs may have keys of their own (docs/adr/0010-keys-per-data-domain.md).
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Annotations, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack.encrypted_table import customer_key_table
from payment_stack.event_sources import POSTING_SOURCE, RULES_SOURCE, grant_publish
from payment_stack.grants import grant_consume, grant_table
from payment_stack.keys import EVENTS_SERVICE, allow_bus_rules_to_encrypt
from payment_stack.metrics import SUM_PER_MINUTE
from payment_stack.metrics import options as metric_options
from payment_stack.nag import (
    NIST_800_53_R5,
    acknowledge_in_packs,
    acknowledge_outside_vpc,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.props import whole_number
from payment_stack.queues import (
    RULE_TARGET_MAX_EVENT_AGE,
    RULE_TARGET_RETRY_ATTEMPTS,
    dead_letter_queue,
)

TRANSACTION_APPROVED = "TransactionApproved"
# Lambda's advice: a visibility timeout at least six times the function timeout, so a batch
# still being retried by the event source is not handed to a second poller.
VISIBILITY_FACTOR = 6
# What the ledger does per posting (domain/ledger.py): reads balances and the posting
# record, and one TransactWriteItems of Put and Update items.
LEDGER_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# What Powertools idempotency does (DynamoDBPersistenceLayer): a conditional PutItem claims
# the transaction (a failed condition returns the item, so no GetItem), an UpdateItem records
# the result, a DeleteItem releases the claim when posting failed.
IDEMPOTENCY_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


class BufferedPoster(Construct):
    """Posts approved transactions once each, at a pace the posting system can take."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey,
        ledger_key: kms.IKey | None = None,
        operations_key: kms.IKey | None = None,
        posting_system: str = "ledger",
        core_banking_url: str | None = None,
        ledger_table: dynamodb.ITableV2 | None = None,
        batch_size: int = 10,
        max_batching_window: Duration | None = None,
        max_concurrency: int = 10,
        max_receive_count: int = 5,
        function_timeout: Duration | None = None,
        approved_source: str = RULES_SOURCE,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        :param encryption_key: for the buffer queue, its dead-letter queue and the
            idempotency records: approved transactions.
        :param ledger_key: for a new ledger table. Default: ``encryption_key``.
        :param operations_key: for the function's log group. Default: ``encryption_key``.
        :param posting_system: ``ledger`` (default: the built-in double-entry ledger on
            DynamoDB) or ``http`` (an external core-banking API at ``core_banking_url``).
        :param ledger_table: an existing ledger table (``pk``/``sk`` strings). Default: a new
            TableV2 with point-in-time recovery, encrypted with ``ledger_key``.
        :param batch_size: messages per invocation, 1 to 10,000 (over 10 needs a batching
            window). Default 10.
        :param max_batching_window: how long to gather a batch. Default: none (latency first).
        :param max_concurrency: the most concurrent invocations, 2 to 1,000: the posting
            system never sees more parallel callers than this. Default 10.
        :param max_receive_count: deliveries before a message moves to the dead-letter queue,
            1 to 1,000. Default 5 (a few tries, then a person looks).
        :param function_timeout: default 30 seconds; the queue's visibility is six times it.
        """
        super().__init__(scope, construct_id)
        for name, value in (
            ("batch_size", batch_size),
            ("max_concurrency", max_concurrency),
            ("max_receive_count", max_receive_count),
        ):
            whole_number("BufferedPoster", name, value)
        _validate(posting_system, core_banking_url, batch_size, max_batching_window,
                  max_concurrency, max_receive_count)  # fmt: skip
        timeout = function_timeout or Duration.seconds(30)
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
            visibility_timeout=Duration.seconds(timeout.to_seconds() * VISIBILITY_FACTOR),
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

        self.ledger_table: dynamodb.ITableV2 = ledger_table or customer_key_table(
            self,
            "LedgerTable",
            encryption_key=ledger_key or encryption_key,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            removal_policy=removal_policy,
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
            "POSTING_SYSTEM": posting_system,
            "LEDGER_TABLE_NAME": self.ledger_table.table_name,
            "IDEMPOTENCY_TABLE_NAME": self.idempotency_table.table_name,
            "EVENT_BUS_NAME": event_bus.event_bus_name,
            # The function posts only what this source approved (the rule filters on it too).
            "APPROVED_SOURCE": approved_source,
        }
        if core_banking_url:
            environment["CORE_BANKING_URL"] = core_banking_url
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
        )
        self.function = poster.function
        grant_table(self.ledger_table, poster.role, *LEDGER_ACTIONS)
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
        if posting_system == "ledger":
            # An HTTP posting system is reached over the network: whether the function needs a
            # VPC to get there is the deployer's decision, so the packs keep asking.
            acknowledge_outside_vpc(
                self.function, ("dynamodb", "events", "kms", "logs", "sqs", "xray")
            )

        self.event_bus = event_bus
        self.approved_source = approved_source
        self._warn_if_another_poster_takes_the_same_approvals()

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

    def metric_posting_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed invocations of the posting function (whole batches that raised)."""
        return self.function.metric_errors(**metric_options(SUM_PER_MINUTE, **props))


def _validate(
    posting_system: str,
    core_banking_url: str | None,
    batch_size: int,
    max_batching_window: Duration | None,
    max_concurrency: int,
    max_receive_count: int,
) -> None:
    if posting_system not in ("ledger", "http"):
        raise ValueError(
            f"BufferedPoster: posting_system must be 'ledger' or 'http', got {posting_system!r}"
        )
    if posting_system == "http" and not core_banking_url:
        raise ValueError("BufferedPoster: posting_system 'http' needs core_banking_url")
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
