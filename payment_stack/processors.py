"""The subscribed processors between ingest and the rules engine.

- ``EnrichmentProcessor``: valid first sightings -> account lookup -> ``TransactionEnriched``.
- ``ScreeningOutcomes``: flagged duplicates -> ``DuplicateFlagged`` and a notification;
  invalid records -> ``TransactionQuarantined``.

Both are functions behind EventBridge rules. EventBridge invokes them asynchronously: the
rule target retries delivery and has a dead-letter queue, and the function's own failures are
retried twice by Lambda and then sent to the same queue, so an event is never just dropped.
That queue holds lifecycle events, so it is encrypted with the transaction data's key
(``encryption_key``); the account directory, the notifications and the logs may have keys of
their own (docs/adr/0010-keys-per-data-domain.md).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack.alarms import (
    DEAD_LETTER_QUEUE,
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    AlarmSetting,
    AlarmThreshold,
    ConstructAlarms,
)
from payment_stack.encrypted_table import customer_key_table
from payment_stack.event_sources import ENRICHMENT_SOURCE, SCREENING_SOURCE, grant_publish
from payment_stack.grants import QueueDestination, grant_publish_to_topic, grant_table
from payment_stack.ingest_pipe import DEFAULT_EVENT_SOURCE, TRANSACTION_AUTHORIZED
from payment_stack.keys import allow_bus_rules_to_encrypt, domain_key
from payment_stack.metrics import SUM_PER_MINUTE
from payment_stack.metrics import options as metric_options
from payment_stack.nag import (
    NIST_800_53_R5,
    acknowledge_in_packs,
    acknowledge_outside_vpc,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.props import role as role_prop
from payment_stack.queues import (
    RULE_TARGET_MAX_EVENT_AGE,
    RULE_TARGET_RETRY_ATTEMPTS,
    dead_letter_queue,
)

# Lambda's asynchronous retries after the first attempt (its default, written out).
ASYNC_RETRIES = 2
# How long Lambda keeps retrying an event it could not run (throttled, or failing) before it
# goes to the on-failure destination.
ASYNC_MAX_EVENT_AGE = Duration.hours(6)
# What a writer of the account directory may call (the sample source loads it in batches).
ACCOUNT_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:BatchWriteItem")
# The alarm kinds of both processors' ``alarms`` prop and their defaults (docs/runbook.md).
ALARM_DEFAULTS: dict[str, AlarmThreshold] = {
    "dead_letter_queue": DEAD_LETTER_QUEUE,
    "function_errors": FUNCTION_ERRORS,
    "function_throttles": FUNCTION_THROTTLES,
}


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
    """Events the function still fails after Lambda's retries go to ``failures`` (written
    with the function's role, which is granted SendMessage and the queue's key for it)."""
    function.configure_async_invoke(
        retry_attempts=ASYNC_RETRIES,
        on_failure=QueueDestination(failures),
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


class _Processor(Construct):
    """What both processors can be watched by. ``props`` of each metric_* method: any
    ``cloudwatch.MetricOptions`` field, over the defaults (1 minute; Sum, or Maximum for a
    queue depth)."""

    function: lambda_.IFunction
    dead_letter_queue: sqs.IQueue
    encryption_key: kms.IKey
    alarms: ConstructAlarms

    def _alarm(
        self,
        owner: str,
        setting: AlarmSetting,
        topic: sns.ITopic | None,
        key: kms.IKey,
        name: str,
        holds: str,
    ) -> None:
        self.alarms = ConstructAlarms(self, owner, setting, ALARM_DEFAULTS, topic=topic, key=key)
        self.alarms.dead_letter_queue(None, self.dead_letter_queue, holds)
        self.alarms.function(name, self.function)

    @property
    def alarm_topic(self) -> sns.ITopic | None:
        """The topic the alarms notify (None when every alarm is turned off)."""
        return self.alarms.topic

    def metric_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed invocations; Lambda retries them, then sends them to the dead-letter queue."""
        return self.function.metric_errors(**metric_options(SUM_PER_MINUTE, **props))

    def metric_throttles(self, **props: Any) -> cloudwatch.Metric:
        """Invocations refused for lack of concurrency; Lambda retries them for six hours."""
        return self.function.metric_throttles(**metric_options(SUM_PER_MINUTE, **props))

    def metric_dead_letter_messages(self, **props: Any) -> cloudwatch.Metric:
        """Events that failed every attempt and wait for redrive. Alarm above zero."""
        return self.dead_letter_queue.metric_approximate_number_of_messages_visible(
            **metric_options(**props)
        )


class EnrichmentProcessor(_Processor):
    """Adds account context to valid first sightings and publishes ``TransactionEnriched``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey | None = None,
        accounts_table: dynamodb.ITableV2 | None = None,
        accounts_key: kms.IKey | None = None,
        operations_key: kms.IKey | None = None,
        ingest_source: str = DEFAULT_EVENT_SOURCE,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        role: iam.IRole | None = None,
        alarms: AlarmSetting = True,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        """
        :param encryption_key: for the dead-letter queue, which holds the events that failed.
            Default: a new key with yearly rotation.
        :param accounts_table: the account directory, partition key ``accountId``. Default: a
            new TableV2 with point-in-time recovery, encrypted with ``accounts_key``.
        :param accounts_key: for a new account directory. Default: ``encryption_key``.
        :param operations_key: for the function's log group. Default: ``encryption_key``.
        :param ingest_source: ``source`` of the ``TransactionAuthorized`` events to enrich.
        :param role: the function's execution role, assumable by ``lambda.amazonaws.com``.
            Default: a new role. Given, it gets the function's grants added to its policy (read
            accounts, put events, send to the dead-letter queue); imported with
            ``mutable=False`` it gets nothing, and you grant those yourself. No cdk-nag finding
            is acknowledged on it.
        :param alarms: ``True`` (default): every alarm at its default; ``False``: none; or a
            mapping of kind to an ``AlarmThreshold`` or ``None`` (off). Kinds:
            ``dead_letter_queue`` (any message visible, 1 minute), ``function_errors`` and
            ``function_throttles`` (at least 1 in 5 minutes). See docs/runbook.md.
        :param alarm_topic: the SNS topic the alarms notify. Default: a new topic encrypted
            with ``operations_key``, TLS only, that only this stack's alarms may publish to.
        """
        super().__init__(scope, construct_id)
        role_prop("EnrichmentProcessor", "role", role, "lambda")
        encryption_key = self.encryption_key = encryption_key or domain_key(
            self,
            "Key",
            description="Encrypts the enrichment's dead-letter queue, accounts and logs",
            removal_policy=removal_policy,
        )
        self.accounts_table: dynamodb.ITableV2 = accounts_table or customer_key_table(
            self,
            "AccountsTable",
            encryption_key=accounts_key or encryption_key,
            partition_key=dynamodb.Attribute(name="accountId", type=dynamodb.AttributeType.STRING),
            removal_policy=removal_policy,
        )
        allow_bus_rules_to_encrypt(self, encryption_key, event_bus)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", encryption_key, removal_policy
        )
        enrich = PaymentFunction(
            self,
            "Enrich",
            handler="payment_posting_functions.handlers.enrich.handler",
            description="Enrichment processor: account context for authorized transactions",
            service_name="enrichment",
            environment={
                "ACCOUNTS_TABLE_NAME": self.accounts_table.table_name,
                "EVENT_BUS_NAME": event_bus.event_bus_name,
            },
            log_retention=log_retention,
            log_removal_policy=removal_policy,
            log_encryption_key=operations_key or encryption_key,
            role=role,
        )
        self.function = enrich.function
        # One account by its key (domain/account_table.py); never a scan of the directory.
        grant_table(self.accounts_table, enrich.role, "dynamodb:GetItem")
        grant_publish(event_bus, enrich.role, [ENRICHMENT_SOURCE])
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
        acknowledge_outside_vpc(
            self.function,
            ("dynamodb", "events", "kms", "logs", "sqs", "xray"),
            own_role=enrich.owns_role,
        )
        self.service_name = enrich.service_name
        self._alarm(
            "EnrichmentProcessor",
            alarms,
            alarm_topic,
            operations_key or encryption_key,
            "Enrich",
            "authorized transactions the enrichment function failed after Lambda's retries, "
            "or that the rule could not deliver",
        )

    def grant_write_accounts(self, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
        """Let ``grantee`` load the account directory (the core system's sync, the sample
        source). ``actions``: among PutItem and BatchWriteItem (default both)."""
        actions = actions or ACCOUNT_WRITE_ACTIONS
        unknown = set(actions) - set(ACCOUNT_WRITE_ACTIONS)
        if unknown:
            raise ValueError(
                f"EnrichmentProcessor: a writer of accounts calls PutItem or BatchWriteItem, "
                f"not {', '.join(sorted(unknown))}"
            )
        return grant_table(self.accounts_table, grantee, *actions)


class ScreeningOutcomes(_Processor):
    """Ends the lifecycle of flagged duplicates and malformed records, and notifies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey | None = None,
        notification_topic: sns.ITopic | None = None,
        operations_key: kms.IKey | None = None,
        ingest_source: str = DEFAULT_EVENT_SOURCE,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        role: iam.IRole | None = None,
        alarms: AlarmSetting = True,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        """
        :param encryption_key: for the dead-letter queue, which holds the events that failed.
            Default: a new key with yearly rotation.
        :param notification_topic: where duplicates are announced (ids only). Default: a new
            topic, encrypted with ``operations_key``, TLS only.
        :param operations_key: for a new notification topic and the function's log group.
            Default: ``encryption_key``.
        :param role: the function's execution role, assumable by ``lambda.amazonaws.com``.
            Default: a new role. Given, it gets the function's grants added to its policy (put
            events, publish notifications, send to the dead-letter queue); imported with
            ``mutable=False`` it gets nothing, and you grant those yourself. No cdk-nag finding
            is acknowledged on it.
        :param alarms: ``True`` (default): every alarm at its default; ``False``: none; or a
            mapping of kind to an ``AlarmThreshold`` or ``None`` (off). Kinds:
            ``dead_letter_queue`` (any message visible, 1 minute), ``function_errors`` and
            ``function_throttles`` (at least 1 in 5 minutes). See docs/runbook.md.
        :param alarm_topic: the SNS topic the alarms notify. Default: a new topic encrypted
            with ``operations_key``, TLS only, that only this stack's alarms may publish to.
        """
        super().__init__(scope, construct_id)
        role_prop("ScreeningOutcomes", "role", role, "lambda")
        encryption_key = self.encryption_key = encryption_key or domain_key(
            self,
            "Key",
            description="Encrypts the screening outcomes' dead-letter queue, topic and logs",
            removal_policy=removal_policy,
        )
        operations_key = operations_key or encryption_key
        self.notification_topic: sns.ITopic = notification_topic or sns.Topic(
            self,
            "NotificationTopic",
            display_name="Payment screening notifications",
            master_key=operations_key,
            enforce_ssl=True,
        )
        allow_bus_rules_to_encrypt(self, encryption_key, event_bus)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", encryption_key, removal_policy
        )
        outcomes = PaymentFunction(
            self,
            "Outcomes",
            handler="payment_posting_functions.handlers.screening_outcomes.handler",
            description="Duplicate and quarantine processor of screened transactions",
            service_name="screening-outcomes",
            environment={
                "EVENT_BUS_NAME": event_bus.event_bus_name,
                "NOTIFICATION_TOPIC_ARN": self.notification_topic.topic_arn,
            },
            log_retention=log_retention,
            log_removal_policy=removal_policy,
            log_encryption_key=operations_key,
            role=role,
        )
        self.function = outcomes.function
        grant_publish(event_bus, outcomes.role, [SCREENING_SOURCE])
        grant_publish_to_topic(self.notification_topic, outcomes.role)
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
        acknowledge_outside_vpc(
            self.function,
            ("events", "kms", "logs", "sns", "sqs", "xray"),
            own_role=outcomes.owns_role,
        )
        self.service_name = outcomes.service_name
        self._alarm(
            "ScreeningOutcomes",
            alarms,
            alarm_topic,
            operations_key,
            "Outcomes",
            "flagged duplicates and malformed records the function failed after Lambda's "
            "retries, or that the rules could not deliver",
        )
