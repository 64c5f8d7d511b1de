"""The built-in ledger's expiry sweeper: a scheduled function that expires pending transfers.

A pending transfer (an authorization hold) whose timeout has passed is released by an
``EXPIRE_PENDING`` transfer, booked by the sweeper through the same ledger code as a post or
a void (``DynamoDBLedger.expire_due``): it reads the balances table's sparse ``expiry`` index,
earliest first, and each expiry is its own idempotent transfer, so two sweeps that overlap
release a hold once. DynamoDB TTL would delete the item days late and book nothing.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from payment_stack.event_sources import POSTING_SOURCE, grant_publish
from payment_stack.grants import QueueDestination, grant_table
from payment_stack.nag import NIST_800_53_R5, acknowledge_in_packs, acknowledge_outside_vpc
from payment_stack.payment_function import PaymentFunction
from payment_stack.queues import dead_letter_queue

# What a sweep calls (domain/ledger_v2/dynamodb.py, expire_due): a Query of the expiry index
# per bucket, a GetItem of each pending's state, one TransactWriteItems per expiry that puts
# the transfer and its entries in the journal (PutItem) and updates the pending and the
# balances (UpdateItem), and a GetItem of the journal when a write is cancelled.
SWEEPER_JOURNAL_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
SWEEPER_BALANCES_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
# The index of pendings that can expire (ledger_v2 ``table_definitions``): the one Query.
EXPIRY_INDEX = "expiry"
DEFAULT_INTERVAL = Duration.minutes(1)
# Expiries per sweep (handlers/expiry_sweeper.py): about 10 ms each on DynamoDB, so a full
# sweep takes seconds; what is left goes at the next tick.
DEFAULT_BATCH = 500


class ExpirySweeper(Construct):
    """Every ``interval``, expire the pending transfers whose timeout has passed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        journal_table: dynamodb.ITableV2,
        balances_table: dynamodb.ITableV2,
        encryption_key: kms.IKey,
        log_encryption_key: kms.IKey,
        interval: Duration = DEFAULT_INTERVAL,
        batch: int = DEFAULT_BATCH,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        role: iam.IRole | None = None,
        event_bus: events.IEventBus | None = None,
    ) -> None:
        """
        :param encryption_key: for the queue of failed sweeps (their invocation records).
        :param event_bus: where each release is published as ``HoldExpired`` (source
            ``payments.posting``, the poster's). None: released without an event.
        :param interval: how often to sweep, at least a minute (EventBridge's finest rate).
            A hold is released at most this long after its timeout.
        :param batch: at most this many expiries per sweep.
        :param role: the function's execution role. Default: a new role.
        """
        super().__init__(scope, construct_id)
        if interval.to_seconds() < 60:
            raise ValueError("ExpirySweeper: interval must be at least one minute")
        if batch < 1:
            raise ValueError("ExpirySweeper: batch must be at least 1")
        # Failed sweeps, written by the function's role (no payment data: a scheduled event
        # and the error). One sweep failing is harmless, the next tick does its work; many in
        # a row mean holds are not being released.
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", encryption_key, removal_policy
        )
        sweeper = PaymentFunction(
            self,
            "Function",
            handler="payment_posting_functions.handlers.expiry_sweeper.handler",
            description="Ledger expiry sweeper: releases pending transfers past their timeout",
            service_name="expiry-sweeper",
            environment={
                "LEDGER_JOURNAL_TABLE_NAME": journal_table.table_name,
                "LEDGER_BALANCES_TABLE_NAME": balances_table.table_name,
                "EXPIRY_BATCH": str(batch),
                **({"EVENT_BUS_NAME": event_bus.event_bus_name} if event_bus else {}),
            },
            timeout=Duration.minutes(1),
            # One sweep at a time: a second would race the first for the same holds (each
            # is released once anyway, but the loser's work is wasted).
            reserved_concurrent_executions=1,
            log_retention=log_retention,
            log_removal_policy=removal_policy,
            log_encryption_key=log_encryption_key,
            role=role,
        )
        self.function = sweeper.function
        grant_table(journal_table, sweeper.role, *SWEEPER_JOURNAL_ACTIONS)
        grant_table(balances_table, sweeper.role, *SWEEPER_BALANCES_ACTIONS)
        # On the index only: a table's grant does not reach its indexes, and the sweeper has
        # no reason to query the table itself.
        iam.Grant.add_to_principal(
            grantee=sweeper.role,
            actions=["dynamodb:Query"],
            resource_arns=[f"{balances_table.table_arn}/index/{EXPIRY_INDEX}"],
        )
        if event_bus is not None:
            grant_publish(event_bus, sweeper.role, [POSTING_SOURCE])
        self.function.configure_async_invoke(
            # The next tick is the retry; an invocation older than one interval is stale.
            retry_attempts=0,
            max_event_age=Duration.seconds(max(60, int(interval.to_seconds()))),
            on_failure=QueueDestination(self.dead_letter_queue),
        )
        acknowledge_in_packs(
            self.function,
            "LambdaDLQ",
            "A failed sweep goes to an on-failure destination, the sweeper's dead-letter "
            "queue, with the invocation record (request and response); a function dead-letter "
            "queue, the alternative Lambda offers, keeps the event without the response.",
            packs=(NIST_800_53_R5,),
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Ledger expiry sweep",
            schedule=events.Schedule.rate(interval),
        )
        # No dead-letter queue on the target: a tick EventBridge cannot deliver holds no
        # data, and the next tick sweeps everything due.
        self.rule.add_target(
            targets.LambdaFunction(
                self.function, retry_attempts=2, max_event_age=Duration.minutes(5)
            )
        )
        acknowledge_outside_vpc(
            self.function,
            ("dynamodb", "events", "kms", "logs", "sqs", "xray")
            if event_bus
            else ("dynamodb", "kms", "logs", "sqs", "xray"),
            own_role=sweeper.owns_role,
        )
