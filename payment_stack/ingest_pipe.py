"""IngestPipe: from a write to the transactions table to ``TransactionAuthorized`` on the bus.

transactions table ──stream (INSERT)──▶ EventBridge Pipe ──▶ payments event bus
                                          │ enrichment: deduplication function
                                          └─ after bounded retries: dead-letter queue

Two keys (docs/adr/0010-keys-per-data-domain.md): ``encryption_key`` for transaction data
(tables, stream, bus, the pipe's definition), ``operations_key`` for what holds none (the
dead-letter queue, which locates failed records in the stream, and the logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_posting_functions.domain.event_names import EventName
from payment_stack import dashboards
from payment_stack.alarms import (
    DEAD_LETTER_QUEUE,
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    INGEST_LAG_SECONDS,
    PIPE_FAILURES,
    AlarmSetting,
    AlarmThreshold,
    ConstructAlarms,
    powertools_metric,
)
from payment_stack.encrypted_table import customer_key_table
from payment_stack.event_sources import (
    INGEST_SOURCE,
    OPERATIONS_SOURCE,
    REVIEW_SOURCE,
    grant_publish,
)
from payment_stack.grants import chosen_actions, grant_send, grant_stream_read, grant_table
from payment_stack.keys import allow_logs_to_encrypt, allow_pipe_to_use, domain_key
from payment_stack.metrics import SUM_PER_MINUTE
from payment_stack.metrics import options as metric_options
from payment_stack.nag import (
    NIST_800_53_R5,
    acknowledge_in_packs,
    acknowledge_inline_policy,
    acknowledge_outside_vpc,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.props import role as role_prop
from payment_stack.props import whole_number
from payment_stack.queues import dead_letter_queue

# EventBridge PutEvents accepts at most 10 entries per call, and Pipes sends a batch in one call.
MAX_BUS_BATCH = 10
TRANSACTIONS_PARTITION_KEY = "transactionId"
DEDUP_PARTITION_KEY = "fingerprint"
DEDUP_TTL_ATTRIBUTE = "expiresAt"
# The time to live of the transactions table and the quarantine (domain/transaction_table.py).
EXPIRES_AT = "expiresAt"
QUARANTINE_SORT_KEY = "sequenceNumber"
TRANSACTION_AUTHORIZED: str = EventName.TRANSACTION_AUTHORIZED.value
DEFAULT_EVENT_SOURCE = INGEST_SOURCE
# What a writer of new transactions may call: the pipe forwards INSERTs only, so a writer
# never needs to update or delete.
TRANSACTION_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:BatchWriteItem")
# What a reader of the quarantine calls: one record (GetItem, by id and sequence number), the
# records of one transaction id (Query, the id a TransactionQuarantined event carries), or
# the whole quarantine (Scan: what is waiting for correction).
QUARANTINE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
# The alarm kinds of ``IngestPipe(alarms=...)`` and their defaults (docs/runbook.md).
ALARM_DEFAULTS: dict[str, AlarmThreshold] = {
    "dead_letter_queue": DEAD_LETTER_QUEUE,
    "pipe_failures": PIPE_FAILURES,
    "ingest_lag": INGEST_LAG_SECONDS,
    "function_errors": FUNCTION_ERRORS,
    "function_throttles": FUNCTION_THROTTLES,
}
# The pipe's failure metrics (AWS/EventBridge/Pipes, dimension PipeName) that get an alarm:
# a whole execution, its enrichment (the dedup function) and its target (the bus).
PIPE_FAILURE_METRICS = ("ExecutionFailed", "EnrichmentStageFailed", "TargetStageFailed")
PIPES_NAMESPACE = "AWS/EventBridge/Pipes"
# What the dedup function emits (handlers/dedup.py): seconds from the stream record's
# ApproximateCreationDateTime to its screening, for the oldest record of each batch. Pipes
# publishes no iterator age for a DynamoDB stream source.
INGEST_LAG_METRIC = "IngestLag"


class StartingPosition(StrEnum):
    """Where the pipe starts reading the table's stream when it is created."""

    TRIM_HORIZON = "TRIM_HORIZON"  # the oldest record the stream still has (24 hours)
    LATEST = "LATEST"  # only what is written after the pipe starts


class IngestPipe(Construct):
    """Reads authorized transactions from a DynamoDB table and publishes them to a bus.

    Every INSERT becomes exactly one ``TransactionAuthorized`` event: valid records carry the
    transaction and a duplicate flag (with the id of the first sighting), malformed ones are
    flagged invalid with a reason. A batch that still fails after the bounded retries is sent
    to ``dead_letter_queue``, never silently dropped.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus | None = None,
        encryption_key: kms.IKey | None = None,
        operations_key: kms.IKey | None = None,
        transactions_table: dynamodb.ITableV2 | None = None,
        batch_size: int = MAX_BUS_BATCH,
        maximum_batching_window: Duration | None = None,
        starting_position: StartingPosition | str = StartingPosition.TRIM_HORIZON,
        maximum_retry_attempts: int = 3,
        maximum_record_age: Duration | None = None,
        parallelization_factor: int = 10,
        dedup_window: Duration | None = None,
        event_source: str = DEFAULT_EVENT_SOURCE,
        archive_retention: Duration | None = None,
        archived_sources: Sequence[str] | None = None,
        data_retention: Duration | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        pipe_role: iam.IRole | None = None,
        dedup_function_role: iam.IRole | None = None,
        alarms: AlarmSetting = True,
        alarm_topic: sns.ITopic | None = None,
        dashboard: bool | cloudwatch.Dashboard = True,
    ) -> None:
        """
        :param event_bus: bus to publish to. Default: a new bus, encrypted with
            ``encryption_key``, with a dead-letter queue and an archive.
        :param encryption_key: customer-managed key for transaction data: the tables, the bus
            and the pipe's definition. Default: a new key with yearly rotation. (The archive of
            a bus this construct creates has a key of its own.)
        :param operations_key: customer-managed key for the dead-letter queue (which locates
            failed records, holding none) and the log groups. Default: a new key with yearly
            rotation.
        :param transactions_table: an existing table with a NEW_IMAGE (or NEW_AND_OLD_IMAGES)
            stream and ``transactionId`` as partition key. Default: a new TableV2 with
            point-in-time recovery, encrypted with ``encryption_key``.
        :param batch_size: records per pipe batch, 1 to 10. Default 10, the most a bus target
            takes in one PutEvents call.
        :param maximum_batching_window: how long the pipe waits to fill a batch. Default: none,
            each batch goes as soon as records are there (latency first).
        :param starting_position: ``StartingPosition.TRIM_HORIZON`` (default: nothing already
            in the stream is missed when the pipe starts) or ``StartingPosition.LATEST``; the
            same names as strings are accepted.
        :param maximum_retry_attempts: retries of a failing batch before it goes to the
            dead-letter queue, 0 to 10,000. Default 3. Unbounded retries are refused: one poison
            batch would block its shard.
        :param maximum_record_age: records older than this go to the dead-letter queue. Between
            60 seconds and 7 days. Default 1 hour.
        :param parallelization_factor: concurrent batches per stream shard, 1 to 10. Default 10,
            so one shard sustains the throughput target; ordering matters only per transaction.
        :param dedup_window: how far apart two sightings of one authorization still count as
            duplicates. Default 24 hours (an RRN is unique per acquirer for about a day).
        :param event_source: the ``source`` of the published events. Default ``payments.ingest``.
        :param archive_retention: retention of the archive of a bus this construct creates.
            Default 365 days. No archive is created on a bus that is passed in.
        :param archived_sources: the ``source`` of the events the archive keeps. Default: the
            roots every other event is derived from (this pipe's ``event_source``, review
            decisions and the operating commands' audit records), which is what a replay
            needs: replayed, they run through the pipeline again and re-derive the rest
            (docs/adr/0023-cost-reductions.md).
        :param data_retention: how long a record stays in the transactions table and in the
            quarantine, through the tables' time to live on ``expiresAt`` (epoch seconds, set
            by the writer: ``domain.transaction_table.TransactionTable`` does). Default 90
            days. A table passed in keeps its own TTL setting: enable it on ``expiresAt``.
        :param log_retention: retention of the pipe and function logs. Default three months.
        :param removal_policy: for the tables, keys, dead-letter queues and log groups.
            Default RETAIN: payment data, failed batches and logs outlive the stack.
        :param pipe_role: the role the pipe runs as, assumable by ``pipes.amazonaws.com``.
            Default: a new role only this account's pipes may assume. Given, it gets what the
            pipe needs added to its policy (read the stream, invoke the dedup function, put
            events, send to the dead-letter queue, write the log group) and is named in
            ``encryption_key``'s policy for the pipe's definition.
        :param dedup_function_role: the execution role of the dedup (screening) function,
            assumable by ``lambda.amazonaws.com``. Default: a new role. Given, it gets the
            function's grants on the dedup, quarantine and transactions tables.
            A role of either kind imported with ``mutable=False`` gets nothing added: grant it
            what the default role's policy holds yourself. No cdk-nag finding is acknowledged
            on a role you give.
        :param alarms: ``True`` (default): every alarm below at its default; ``False``: none;
            or a mapping of kind to an ``AlarmThreshold`` (replaces the default) or ``None``
            (turns the kind off). Kinds: ``dead_letter_queue`` (the pipe's and the bus's
            dead-letter queues, any message visible, 1 minute), ``pipe_failures`` (the pipe's
            ExecutionFailed, EnrichmentStageFailed and TargetStageFailed, at least 1 in 5
            minutes), ``ingest_lag`` (the dedup function's ``IngestLag`` metric, seconds from a
            record's write to its screening, Maximum at least 300 for 3 minutes in a row),
            ``function_errors`` and ``function_throttles`` (the dedup function, at least 1 in
            5 minutes). See docs/runbook.md for what each means and what answers it.
        :param alarm_topic: the SNS topic the alarms notify (alarm and OK). Default: a new
            topic encrypted with ``operations_key``, TLS only, that only this stack's alarms
            may publish to. A topic you give must let ``cloudwatch.amazonaws.com`` publish
            (``payment_stack.alarms.allow_alarms_to_publish``).
        :param dashboard: True: a CloudWatch dashboard of the stage (``<stack>-<construct
            path>``); a ``Dashboard``: the stage's section on it (the stack puts the three
            stages on one); False: none. It shows
            records in, screening outcomes, dead-letter queues, ingest lag, failures. Default
            True.
        """
        super().__init__(scope, construct_id)
        given_pipe_role = role_prop("IngestPipe", "pipe_role", pipe_role, "pipes")
        role_prop("IngestPipe", "dedup_function_role", dedup_function_role, "lambda")
        if event_bus is not None and archive_retention is not None:
            raise ValueError(
                "IngestPipe: archive_retention applies only to a bus this construct creates; "
                "archive a bus you pass in where you own it, or omit event_bus."
            )
        maximum_record_age = maximum_record_age or Duration.hours(1)
        self.data_retention = data_retention or Duration.days(90)
        if self.data_retention.to_seconds() < Duration.days(1).to_seconds():
            raise ValueError("IngestPipe: data_retention must be at least one day")
        dedup_window = dedup_window or Duration.hours(24)
        _validate(
            batch_size=batch_size,
            maximum_batching_window=maximum_batching_window,
            starting_position=starting_position,
            maximum_retry_attempts=maximum_retry_attempts,
            maximum_record_age=maximum_record_age,
            parallelization_factor=parallelization_factor,
            dedup_window=dedup_window,
        )

        self._removal_policy = removal_policy
        self.encryption_key: kms.IKey = encryption_key or domain_key(
            self,
            "Key",
            description="Encrypts transaction data: tables, stream, bus, queues of lifecycle "
            "events, the pipe's definition",
            removal_policy=removal_policy,
        )
        self.operations_key: kms.IKey = operations_key or domain_key(
            self,
            "OperationsKey",
            description="Encrypts operational data of the ingest pipe: failure records, logs",
            removal_policy=removal_policy,
        )
        allow_logs_to_encrypt(self, self.operations_key)

        self.transactions_table: dynamodb.ITableV2 = transactions_table or customer_key_table(
            self,
            "TransactionsTable",
            encryption_key=self.encryption_key,
            partition_key=dynamodb.Attribute(
                name=TRANSACTIONS_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            dynamo_stream=dynamodb.StreamViewType.NEW_IMAGE,
            time_to_live_attribute=EXPIRES_AT,
            removal_policy=removal_policy,
        )
        stream_arn = _stream_arn_with_images(self.transactions_table)

        # Records screening refused, without the refused values (domain/quarantine.py).
        self.quarantine_table = customer_key_table(
            self,
            "QuarantineTable",
            encryption_key=self.encryption_key,
            partition_key=dynamodb.Attribute(
                name=TRANSACTIONS_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(
                name=QUARANTINE_SORT_KEY, type=dynamodb.AttributeType.STRING
            ),
            time_to_live_attribute=EXPIRES_AT,
            removal_policy=removal_policy,
        )

        self.dedup_table = customer_key_table(
            self,
            "DedupTable",
            encryption_key=self.encryption_key,
            partition_key=dynamodb.Attribute(
                name=DEDUP_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            time_to_live_attribute=DEDUP_TTL_ATTRIBUTE,
            removal_policy=removal_policy,
        )

        # Pipes writes a failed batch's place in the stream here, never its records.
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", self.operations_key, removal_policy
        )

        self.archive: events.Archive | None = None
        self.archive_key: kms.IKey | None = None
        self.bus_dead_letter_queue: sqs.Queue | None = None
        sources = list(
            (event_source, REVIEW_SOURCE, OPERATIONS_SOURCE)
            if archived_sources is None
            else archived_sources
        )
        if isinstance(archived_sources, str) or not sources:
            raise ValueError(
                f"IngestPipe: archived_sources is a non-empty list of sources, "
                f"got {archived_sources!r}"
            )
        self.event_bus: events.IEventBus = event_bus or self._create_bus(
            archive_retention or Duration.days(365), sources
        )

        dedup = PaymentFunction(
            self,
            "Dedup",
            handler="payment_posting_functions.handlers.dedup.handler",
            description="Deduplication enrichment of the ingest pipe",
            service_name="ingest-dedup",
            environment={
                "DEDUP_TABLE_NAME": self.dedup_table.table_name,
                "DEDUP_WINDOW_SECONDS": str(int(dedup_window.to_seconds())),
                "QUARANTINE_TABLE_NAME": self.quarantine_table.table_name,
                "TRANSACTIONS_TABLE_NAME": self.transactions_table.table_name,
                "RETENTION_SECONDS": str(int(self.data_retention.to_seconds())),
            },
            log_retention=log_retention,
            log_removal_policy=removal_policy,
            log_encryption_key=self.operations_key,
            role=dedup_function_role,
        )
        self._dedup = dedup
        self.dedup_function = dedup.function
        # What the store does (domain/dedup_store.py): a conditional PutItem claims a new
        # fingerprint, a conditional UpdateItem takes over an expired one or records a
        # duplicate's verdict; both read the item back on a failed condition. No delete or scan.
        grant_table(self.dedup_table, dedup.role, "dynamodb:PutItem", "dynamodb:UpdateItem")
        # A refused record is kept in the quarantine (PutItem) and taken out of the
        # transactions table (DeleteItem), by the function that sees its raw values.
        grant_table(self.quarantine_table, dedup.role, "dynamodb:PutItem")
        grant_table(self.transactions_table, dedup.role, "dynamodb:DeleteItem")

        self.pipe_role: iam.IRole = given_pipe_role or iam.Role(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal(
                "pipes.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="Execution role of the ingest pipe",
        )
        self.pipe_log_group = logs.LogGroup(
            self,
            "PipeLogGroup",
            retention=log_retention,
            removal_policy=removal_policy,
            encryption_key=self.operations_key,
        )
        grant_stream_read(self.transactions_table, self.pipe_role)
        # Written out rather than grant_invoke(), which adds the function's versions (":*").
        self.pipe_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.dedup_function.function_arn]
            )
        )
        grant_publish(self.event_bus, self.pipe_role, [event_source])
        grant_send(self.dead_letter_queue, self.pipe_role)
        self.pipe_log_group.grant_write(self.pipe_role)
        # The pipe's definition (its filter) is encrypted with the transaction data's key.
        allow_pipe_to_use(self, self.encryption_key, self.pipe_role)

        self.pipe = pipes.CfnPipe(
            self,
            "Pipe",
            description="Authorized transactions from the table stream to the payments bus",
            role_arn=self.pipe_role.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern='{"eventName":["INSERT"]}')]
                ),
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position=StartingPosition(starting_position).value,
                    batch_size=batch_size,
                    maximum_batching_window_in_seconds=(
                        int(maximum_batching_window.to_seconds())
                        if maximum_batching_window
                        else None
                    ),
                    maximum_retry_attempts=maximum_retry_attempts,
                    maximum_record_age_in_seconds=int(maximum_record_age.to_seconds()),
                    parallelization_factor=parallelization_factor,
                    # Split a failing batch to isolate the record that fails, instead of
                    # sending its healthy neighbours to the dead-letter queue with it.
                    on_partial_batch_item_failure="AUTOMATIC_BISECT",
                    dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(
                        arn=self.dead_letter_queue.queue_arn
                    ),
                ),
            ),
            enrichment=self.dedup_function.function_arn,
            target=self.event_bus.event_bus_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                event_bridge_event_bus_parameters=pipes.CfnPipe.PipeTargetEventBridgeEventBusParametersProperty(
                    detail_type=TRANSACTION_AUTHORIZED, source=event_source
                )
            ),
            log_configuration=pipes.CfnPipe.PipeLogConfigurationProperty(
                # ERROR without execution data: failures are logged, card data never is.
                level="ERROR",
                cloudwatch_logs_log_destination=pipes.CfnPipe.CloudwatchLogsLogDestinationProperty(
                    log_group_arn=self.pipe_log_group.log_group_arn
                ),
            ),
            kms_key_identifier=self.encryption_key.key_arn,
            desired_state="RUNNING",
        )
        # The role's policy must exist before the pipe starts polling, or the first polls fail.
        self.pipe.node.add_dependency(self.pipe_role)

        self._acknowledge_findings(owns_pipe_role=given_pipe_role is None)
        self.alarms = ConstructAlarms(
            self,
            "IngestPipe",
            alarms,
            ALARM_DEFAULTS,
            topic=alarm_topic,
            key=self.operations_key,
        )
        self._alarm()
        self.dashboard: cloudwatch.Dashboard | None = (
            self._dashboard(dashboards.given(dashboard)) if dashboard else None
        )

    @property
    def alarm_topic(self) -> sns.ITopic | None:
        """The topic the alarms notify (None when every alarm is turned off)."""
        return self.alarms.topic

    def pipe_metric(self, metric_name: str, **props: Any) -> cloudwatch.Metric:
        """A metric of the pipe (AWS/EventBridge/Pipes, dimension PipeName), e.g.
        ``EventCount`` or ``ExecutionFailed``. ``props``: any ``cloudwatch.MetricOptions``
        field (default: 1 minute, Sum)."""
        return cloudwatch.Metric(
            namespace=PIPES_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"PipeName": self.pipe.ref},
            **metric_options(SUM_PER_MINUTE, **props),
        )

    def metric_ingest_lag(self, **props: Any) -> cloudwatch.Metric:
        """Seconds from a record's write to the table to its screening by the pipe (the
        oldest record of each batch): what an iterator age would say, which Pipes does not
        publish. ``props``: any ``cloudwatch.MetricOptions`` field (default: 1 minute,
        Maximum)."""
        metric = powertools_metric(self._dedup.service_name, INGEST_LAG_METRIC, "Maximum")
        return metric.with_(**metric_options(**props))

    def _dead_letters(self) -> list[tuple[str, sqs.IQueue, str]]:
        queues: list[tuple[str, sqs.IQueue, str]] = [
            ("Pipe", self.dead_letter_queue, "stream positions of batches the pipe failed "
             "after its retries (the records stay in the table)"),
        ]  # fmt: skip
        if self.bus_dead_letter_queue is not None:
            queues.append(
                ("Bus", self.bus_dead_letter_queue, "events the bus could not deliver to a "
                 "target (for example when it could not use its key)"),
            )  # fmt: skip
        return queues

    def _alarm(self) -> None:
        for name, queue, holds in self._dead_letters():
            self.alarms.dead_letter_queue(name, queue, holds)
        for metric_name in PIPE_FAILURE_METRICS:
            self.alarms.add(
                "pipe_failures",
                f"Pipe-{metric_name}",
                self.pipe_metric(metric_name),
                f"The ingest pipe's {metric_name}: batches it retries, then sends to the "
                "dead-letter queue. See docs/runbook.md.",
            )
        self.alarms.add(
            "ingest_lag",
            "IngestLag",
            self.metric_ingest_lag(),
            "The ingest pipe is behind the transactions table's stream (seconds from write to "
            "screening). See docs/runbook.md.",
        )
        self.alarms.function("Dedup", self.dedup_function)

    def _dashboard(self, into: cloudwatch.Dashboard | None) -> cloudwatch.Dashboard:
        board = dashboards.stage_dashboard(
            self,
            "Ingest",
            "transactions table → stream → pipe (dedup screening) → bus → enrichment and "
            "screening outcomes",
            into=into,
        )
        service = self._dedup.service_name
        board.add_widgets(
            dashboards.graph(
                "Records in",
                [
                    self.pipe_metric("EventCount", label="Pipe: records read"),
                    dashboards.labelled(powertools_metric(service, "RecordsScreened"), "Screened"),
                ],
            ),
            dashboards.graph(
                "Screening outcomes",
                [
                    dashboards.labelled(
                        powertools_metric(service, "DuplicatesFlagged"), "Duplicates"
                    ),
                    dashboards.labelled(powertools_metric(service, "InvalidRecords"), "Invalid"),
                ],
            ),
            dashboards.graph(
                "Ingest lag (seconds, write to screening)",
                [self.metric_ingest_lag(label="Oldest record of a batch")],
                unit_label="seconds",
            ),
        )
        board.add_widgets(
            dashboards.queue_depths([(name, queue) for name, queue, _ in self._dead_letters()]),
            dashboards.graph(
                "Failures",
                [
                    *(self.pipe_metric(name, label=name) for name in PIPE_FAILURE_METRICS),
                    self.dedup_function.metric_errors(statistic="Sum", label="Dedup errors"),
                    self.dedup_function.metric_throttles(statistic="Sum", label="Dedup throttles"),
                ],
            ),
            dashboards.alarm_states(self.alarms.alarms)
            if self.alarms.alarms
            else dashboards.graph("Pipe duration", [self.pipe_metric("Duration", statistic="p99")],
                                  unit_label="ms"),
        )  # fmt: skip
        return board

    def grant_write_transactions(self, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
        """Let ``grantee`` write new transactions, which starts their lifecycle.

        ``actions``: what the writer calls, among PutItem and BatchWriteItem (default both).
        """
        actions = actions or TRANSACTION_WRITE_ACTIONS
        unknown = set(actions) - set(TRANSACTION_WRITE_ACTIONS)
        if unknown:
            allowed = " or ".join(TRANSACTION_WRITE_ACTIONS)
            raise ValueError(
                f"IngestPipe: a writer of transactions calls {allowed}, "
                f"not {', '.join(sorted(unknown))}"
            )
        return grant_table(self.transactions_table, grantee, *actions)

    def grant_read_quarantine(self, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
        """Let ``grantee`` read the records screening refused, to correct them: each holds the
        reason, the names of the refused fields and the rest of the record, never a refused
        value (write a corrected record with ``grant_write_transactions``).

        ``actions``: among GetItem, Query and Scan (default all three), and the table key's
        Decrypt through DynamoDB.
        """
        chosen = chosen_actions(
            "IngestPipe", "a reader of the quarantine", actions, QUARANTINE_READ_ACTIONS
        )
        return grant_table(self.quarantine_table, grantee, *chosen)

    def metric_dead_letter_messages(self, **props: Any) -> cloudwatch.Metric:
        """Batches that failed all retries and wait in the dead-letter queue for redrive.

        Alarm on any value above zero: each message is up to ten transactions not yet on the bus.
        ``props``: any ``cloudwatch.MetricOptions`` field (default: 1 minute, Maximum).
        """
        return self.dead_letter_queue.metric_approximate_number_of_messages_visible(
            **metric_options(**props)
        )

    def metric_screening_errors(self, **props: Any) -> cloudwatch.Metric:
        """Failed invocations of the screening function: batches the pipe will retry, then
        dead-letter. ``props``: any ``cloudwatch.MetricOptions`` field (default: 1 minute, Sum).
        """
        return self.dedup_function.metric_errors(**metric_options(SUM_PER_MINUTE, **props))

    def _create_bus(
        self, archive_retention: Duration, archived_sources: list[str]
    ) -> events.IEventBus:
        # Events land here when the bus cannot encrypt or decrypt them with the key, so this
        # queue must not depend on that key: SQS-managed encryption (which also breaks the
        # key -> bus -> queue -> key cycle the key policy would otherwise create).
        bus_dlq = dead_letter_queue(self, "BusDeadLetterQueue", None, self._removal_policy)
        self.bus_dead_letter_queue = bus_dlq
        bus = events.EventBus(
            self,
            "EventBus",
            description="Lifecycle events of payment transactions",
            kms_key=self.encryption_key,
            dead_letter_queue=bus_dlq,
        )
        # EventBridge delivers to a bus dead-letter queue with its service principal, which
        # the queue must allow, for this bus only.
        bus_dlq.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[bus_dlq.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": bus.event_bus_arn}},
            )
        )
        # The archive gets a key of its own: its key policy must name the bus, and the bus
        # already depends on the transaction key, so sharing that key would be a dependency
        # cycle. No role may use it: only EventBridge, for this bus (CDK's statements).
        self.archive_key = domain_key(
            self,
            "ArchiveKey",
            description="Encrypts the archive of payment lifecycle events",
            removal_policy=self._removal_policy,
        )
        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=bus,
            description="The events every other is derived from, for replay: "
            + ", ".join(archived_sources),
            event_pattern=events.EventPattern(
                account=[Stack.of(self).account], source=archived_sources
            ),
            kms_key=self.archive_key,
            retention=archive_retention,
        )
        return bus

    def _acknowledge_findings(self, owns_pipe_role: bool) -> None:
        # A role given is the user's: its findings are theirs to acknowledge (payment_function).
        if owns_pipe_role:
            acknowledge_inline_policy(self.pipe_role)
        acknowledge_outside_vpc(
            self.dedup_function,
            ("dynamodb", "kms", "logs", "xray"),
            own_role=self._dedup.owns_role,
        )
        acknowledge_in_packs(
            self.dedup_function,
            "LambdaDLQ",
            "The pipe invokes this function synchronously as its enrichment step; a function "
            "dead-letter queue applies to asynchronous invocations only, and a batch that still "
            "fails after the pipe's retries goes to the pipe's dead-letter queue.",
            packs=(NIST_800_53_R5,),
        )
        acknowledge_in_packs(
            self.dedup_function,
            "LambdaConcurrency",
            "Only the pipe invokes this function, one batch at a time per parallelization slot "
            "of each stream shard, which bounds its concurrency; a lower reserved limit would "
            "throttle the pipe into retries and the dead-letter queue.",
            packs=(NIST_800_53_R5,),
        )


def _stream_arn_with_images(table: dynamodb.ITableV2) -> str:
    """The table's stream ARN, refusing a table whose stream cannot feed the pipe."""
    problem = (
        "IngestPipe: the transactions table has no stream with new images. Create it with "
        "dynamo_stream=StreamViewType.NEW_IMAGE (or NEW_AND_OLD_IMAGES), or import it with "
        "table_stream_arn."
    )
    resource = table.node.default_child
    if isinstance(resource, dynamodb.CfnGlobalTable):
        # A TableV2 offers a stream ARN token whether or not it has a stream; only its L1
        # knows. The typed getter cannot read the lazily rendered value, the (protected)
        # untyped property bag can.
        spec = Stack.of(table).resolve(resource._cfn_properties.get("streamSpecification"))
        if (spec or {}).get("streamViewType") not in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            raise ValueError(problem)
    if table.table_stream_arn is None:
        raise ValueError(problem)
    return table.table_stream_arn


def _validate(
    *,
    batch_size: int,
    maximum_batching_window: Duration | None,
    starting_position: StartingPosition | str,
    maximum_retry_attempts: int,
    maximum_record_age: Duration,
    parallelization_factor: int,
    dedup_window: Duration,
) -> None:
    def unresolved(value: object) -> bool:
        return Token.is_unresolved(value)

    for name, value in (
        ("batch_size", batch_size),
        ("maximum_retry_attempts", maximum_retry_attempts),
        ("parallelization_factor", parallelization_factor),
    ):
        whole_number("IngestPipe", name, value)
    if not unresolved(batch_size) and not 1 <= batch_size <= MAX_BUS_BATCH:
        raise ValueError(
            f"IngestPipe: batch_size must be between 1 and {MAX_BUS_BATCH}, got {batch_size}. "
            "The target is an event bus, and PutEvents takes at most 10 entries per call."
        )
    if maximum_batching_window is not None and maximum_batching_window.to_seconds() > 300:
        raise ValueError(
            "IngestPipe: maximum_batching_window must be at most 300 seconds "
            "(the EventBridge Pipes limit); transactions are meant to post within seconds."
        )
    if starting_position not in tuple(StartingPosition):
        raise ValueError(
            f"IngestPipe: starting_position must be 'TRIM_HORIZON' or 'LATEST', "
            f"got {starting_position!r}."
        )
    if not unresolved(maximum_retry_attempts) and not 0 <= maximum_retry_attempts <= 10_000:
        raise ValueError(
            f"IngestPipe: maximum_retry_attempts must be between 0 and 10000, got "
            f"{maximum_retry_attempts}. Retries must be bounded, or one failing batch blocks "
            "its shard forever."
        )
    if not 60 <= maximum_record_age.to_seconds() <= 604_800:
        raise ValueError(
            "IngestPipe: maximum_record_age must be between 60 seconds and 7 days "
            "(the EventBridge Pipes limits for a DynamoDB stream)."
        )
    if not unresolved(parallelization_factor) and not 1 <= parallelization_factor <= 10:
        raise ValueError(
            f"IngestPipe: parallelization_factor must be between 1 and 10, got "
            f"{parallelization_factor}."
        )
    if not 1 <= dedup_window.to_seconds() <= 7 * 86_400:
        raise ValueError(
            "IngestPipe: dedup_window must be between 1 second and 7 days; a longer window "
            "would flag legitimate repeat payments as duplicates."
        )
