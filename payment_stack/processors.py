"""The subscribed processors between ingest and the rules engine.

- ``EnrichmentProcessor``: valid first sightings -> account lookup -> ``TransactionEnriched``.
- ``ScreeningOutcomes``: flagged duplicates -> ``DuplicateFlagged`` and a notification;
  invalid records -> ``TransactionQuarantined``.

Both are functions behind EventBridge rules. EventBridge invokes them asynchronously: the
rule target retries delivery and has a dead-letter queue, and the function's own failures are
retried twice by Lambda and then sent to the same queue, so an event is never just dropped.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack.encrypted_table import customer_key_table
from payment_stack.event_sources import ENRICHMENT_SOURCE, SCREENING_SOURCE, grant_publish
from payment_stack.ingest_pipe import DEFAULT_EVENT_SOURCE, TRANSACTION_AUTHORIZED
from payment_stack.nag import (
    NIST_800_53_R5,
    acknowledge_in_packs,
    acknowledge_kms_grant_wildcards,
    acknowledge_outside_vpc,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.queues import (
    RULE_TARGET_MAX_EVENT_AGE,
    RULE_TARGET_RETRY_ATTEMPTS,
    allow_eventbridge_to_encrypt,
    dead_letter_queue,
)

# Lambda's asynchronous retries after the first attempt (its default, written out).
ASYNC_RETRIES = 2
# How long Lambda keeps retrying an event it could not run (throttled, or failing) before it
# goes to the on-failure destination.
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


def subscribe(rule: events.Rule, function: lambda_.IFunction, failures: sqs.IQueue) -> None:
    """Target ``function`` from ``rule``; undeliverable events go to ``failures``."""
    rule.add_target(
        targets.LambdaFunction(
            function,
            dead_letter_queue=failures,
            retry_attempts=RULE_TARGET_RETRY_ATTEMPTS,
            max_event_age=RULE_TARGET_MAX_EVENT_AGE,
        )
    )


def fail_into(function: lambda_.IFunction, failures: sqs.IQueue) -> None:
    """Events the function still fails after Lambda's retries go to ``failures``."""
    function.configure_async_invoke(
        retry_attempts=ASYNC_RETRIES,
        on_failure=destinations.SqsDestination(failures),
        max_event_age=ASYNC_MAX_EVENT_AGE,
    )
    acknowledge_in_packs(
        function,
        "LambdaDLQ",
        "Failed asynchronous invocations go to an on-failure destination, this processor's "
        "dead-letter queue, with the invocation record (request and response); a function "
        "dead-letter queue, the alternative Lambda offers, keeps the event without the response.",
        packs=(NIST_800_53_R5,),
    )
    acknowledge_in_packs(
        function,
        "LambdaConcurrency",
        "EventBridge invokes this function asynchronously: Lambda queues its events and retries "
        "throttled ones for up to six hours, so a limit would delay them without shielding a "
        "system of ours; the posting function, which feeds the posting system, has one.",
        packs=(NIST_800_53_R5,),
    )


def _acknowledge_kms_grants(scope: Construct) -> None:
    acknowledge_kms_grant_wildcards(
        scope,
        "CDK grants on a KMS-encrypted table, topic or queue use these action wildcards; "
        "the resource is the pipeline's one customer-managed key.",
    )


class EnrichmentProcessor(Construct):
    """Adds account context to valid first sightings and publishes ``TransactionEnriched``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey,
        accounts_table: dynamodb.ITableV2 | None = None,
        ingest_source: str = DEFAULT_EVENT_SOURCE,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        :param accounts_table: the account directory, partition key ``accountId``. Default: a
            new TableV2 with point-in-time recovery, encrypted with ``encryption_key``.
        :param ingest_source: ``source`` of the ``TransactionAuthorized`` events to enrich.
        """
        super().__init__(scope, construct_id)
        self.accounts_table: dynamodb.ITableV2 = accounts_table or customer_key_table(
            self,
            "AccountsTable",
            encryption_key=encryption_key,
            partition_key=dynamodb.Attribute(name="accountId", type=dynamodb.AttributeType.STRING),
            removal_policy=removal_policy,
        )
        allow_eventbridge_to_encrypt(self, encryption_key)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", encryption_key, removal_policy
        )
        enrich = PaymentFunction(
            self,
            "Enrich",
            handler="handlers.enrich.handler",
            description="Enrichment processor: account context for authorized transactions",
            service_name="enrichment",
            environment={
                "ACCOUNTS_TABLE_NAME": self.accounts_table.table_name,
                "EVENT_BUS_NAME": event_bus.event_bus_name,
            },
            log_retention=log_retention,
            log_removal_policy=removal_policy,
        )
        self.function = enrich.function
        self.accounts_table.grant(enrich.role, "dynamodb:GetItem")
        encryption_key.grant_decrypt(enrich.role)
        grant_publish(event_bus, enrich.role, [ENRICHMENT_SOURCE])
        self.dead_letter_queue.grant_send_messages(enrich.role)
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=event_bus,
            description="Valid, first-sighted authorized transactions to the enrichment function",
            event_pattern=events.EventPattern(
                source=[ingest_source],
                detail_type=[TRANSACTION_AUTHORIZED],
                detail={"screening": {"valid": [True], "duplicate": [False]}},
            ),
        )
        subscribe(self.rule, self.function, self.dead_letter_queue)
        fail_into(self.function, self.dead_letter_queue)
        _acknowledge_kms_grants(self)
        acknowledge_outside_vpc(self.function, ("dynamodb", "events", "kms", "logs", "sqs", "xray"))


class ScreeningOutcomes(Construct):
    """Ends the lifecycle of flagged duplicates and malformed records, and notifies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey,
        notification_topic: sns.ITopic | None = None,
        ingest_source: str = DEFAULT_EVENT_SOURCE,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        :param notification_topic: where duplicates are announced. Default: a new topic,
            encrypted with ``encryption_key``, TLS only.
        """
        super().__init__(scope, construct_id)
        self.notification_topic: sns.ITopic = notification_topic or sns.Topic(
            self,
            "NotificationTopic",
            display_name="Payment screening notifications",
            master_key=encryption_key,
            enforce_ssl=True,
        )
        allow_eventbridge_to_encrypt(self, encryption_key)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", encryption_key, removal_policy
        )
        outcomes = PaymentFunction(
            self,
            "Outcomes",
            handler="handlers.screening_outcomes.handler",
            description="Duplicate and quarantine processor of screened transactions",
            service_name="screening-outcomes",
            environment={
                "EVENT_BUS_NAME": event_bus.event_bus_name,
                "NOTIFICATION_TOPIC_ARN": self.notification_topic.topic_arn,
            },
            log_retention=log_retention,
            log_removal_policy=removal_policy,
        )
        self.function = outcomes.function
        grant_publish(event_bus, outcomes.role, [SCREENING_SOURCE])
        self.notification_topic.grant_publish(outcomes.role)
        encryption_key.grant_encrypt_decrypt(outcomes.role)
        self.dead_letter_queue.grant_send_messages(outcomes.role)
        self.duplicates_rule = events.Rule(
            self,
            "DuplicatesRule",
            event_bus=event_bus,
            description="Flagged duplicates to the duplicate processor",
            event_pattern=events.EventPattern(
                source=[ingest_source],
                detail_type=[TRANSACTION_AUTHORIZED],
                detail={"screening": {"valid": [True], "duplicate": [True]}},
            ),
        )
        self.quarantine_rule = events.Rule(
            self,
            "QuarantineRule",
            event_bus=event_bus,
            description="Malformed records to quarantine",
            event_pattern=events.EventPattern(
                source=[ingest_source],
                detail_type=[TRANSACTION_AUTHORIZED],
                detail={"screening": {"valid": [False]}},
            ),
        )
        for rule in (self.duplicates_rule, self.quarantine_rule):
            subscribe(rule, self.function, self.dead_letter_queue)
        fail_into(self.function, self.dead_letter_queue)
        _acknowledge_kms_grants(self)
        acknowledge_outside_vpc(self.function, ("events", "kms", "logs", "sns", "sqs", "xray"))
