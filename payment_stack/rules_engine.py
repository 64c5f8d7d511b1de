"""RulesEngine: enriched transactions through a Step Functions workflow of business rules.

The workflow is a States Language file in ``statemachine/`` that a rules analyst can read and
diff. Its outcomes (approved, rejected, held, inquiry completed) and side events (foreign
transaction, watched merchant category) go back to the bus; validation failures also notify a
topic. A transaction held for review waits in a table of pending reviews until a person's
``ReviewDecided`` event re-enters the workflow (docs/adr/0019-review-decisions-stored.md).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from payment_posting_functions.domain.event_names import EventName, EventSource
from payment_stack import dashboards
from payment_stack.alarms import (
    DEAD_LETTER_QUEUE,
    WORKFLOW_FAILURES,
    AlarmSetting,
    AlarmThreshold,
    ConstructAlarms,
)
from payment_stack.assets import STATEMACHINE_DIR
from payment_stack.encrypted_table import customer_key_table
from payment_stack.event_sources import (
    ENRICHMENT_SOURCE,
    REVIEW_SOURCE,
    RULES_SOURCE,
    grant_publish,
)
from payment_stack.grants import grant_publish_to_topic, grant_table
from payment_stack.keys import allow_bus_rules_to_encrypt, allow_logs_to_encrypt, domain_key
from payment_stack.metrics import SUM_PER_MINUTE
from payment_stack.metrics import options as metric_options
from payment_stack.nag import acknowledge, acknowledge_inline_policy
from payment_stack.observability import Observability
from payment_stack.props import file_path, whole_number
from payment_stack.props import role as role_prop
from payment_stack.queues import (
    RULE_TARGET_MAX_EVENT_AGE,
    RULE_TARGET_RETRY_ATTEMPTS,
    dead_letter_queue,
)

DEFAULT_DEFINITION = STATEMACHINE_DIR / "business_rules.asl.json"
# Where CDK's SfnStateMachine target creates the role its rule starts the workflow with.
RULE_ROLE_ID = "EventsRole"
TRANSACTION_ENRICHED: str = EventName.TRANSACTION_ENRICHED.value
REVIEW_DECIDED: str = EventName.REVIEW_DECIDED.value
# A definition that names this table stores the reviews it holds there and takes decisions:
# RulesEngine then creates the table and the rule that brings ReviewDecided events.
PENDING_REVIEWS_TABLE = "PendingReviewsTableName"
PENDING_REVIEWS_KEY = "transactionId"
PENDING_REVIEWS_TTL = "expiresAt"
# Store a review (PutItem), claim it for a decision and mark its outcome published
# (UpdateItem), read one stored before when a hold comes again (GetItem: decided, the decision
# stands). Never deleted by the workflow: its time to live ends it.
PENDING_REVIEW_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem")
# The workflow counts the expiry day with lookups of at most 1,000 entries (an ArrayRange).
MAX_PENDING_REVIEW_DAYS = 999
# Gambling, quasi-cash and money orders: categories card schemes treat as higher risk.
DEFAULT_WATCHED_MCCS = ("7995", "6051", "4829")
# The alarm kinds of ``RulesEngine(alarms=...)`` and their defaults (docs/runbook.md).
ALARM_DEFAULTS: dict[str, AlarmThreshold] = {
    "dead_letter_queue": DEAD_LETTER_QUEUE,
    "failed_executions": WORKFLOW_FAILURES,
    "timed_out_executions": WORKFLOW_FAILURES,
    "throttled_executions": WORKFLOW_FAILURES,
}


def _camel(member_name: str) -> str:
    return "".join(part.capitalize() for part in member_name.split("_"))


# The event catalogue's names, for a definition to write as ${TransactionApproved} or
# ${RulesSource} rather than as text of its own: a misspelt one fails the synth (nothing
# substitutes it) instead of publishing an event no rule matches. Keyed by the enum member, so
# a renamed value reaches the definition without an edit.
EVENT_NAME_SUBSTITUTIONS: Mapping[str, str] = {
    **{_camel(member.name): member.value for member in EventName},
    **{f"{_camel(member.name)}Source": member.value for member in EventSource},
}
BUILT_IN_SUBSTITUTIONS = frozenset(
    {
        "EventBusName",
        "FailureTopicArn",
        "HighValueThreshold",
        "WatchedMccs",
        "MaxFxDeviationBps",
        PENDING_REVIEWS_TABLE,
        "PendingReviewDays",
    }
    | set(EVENT_NAME_SUBSTITUTIONS)
)


class RulesEngine(Construct):
    """A rule on ``TransactionEnriched`` starting the business-rules workflow; with the
    built-in rules, a table of pending reviews and a rule on ``ReviewDecided`` too."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        encryption_key: kms.IKey | None = None,
        operations_key: kms.IKey | None = None,
        definition_file: str | os.PathLike[str] | None = None,
        definition_substitutions: Mapping[str, str] | None = None,
        state_machine_type: sfn.StateMachineType = sfn.StateMachineType.EXPRESS,
        high_value_threshold: int = 1_000_000,
        watched_merchant_categories: Sequence[str] = DEFAULT_WATCHED_MCCS,
        max_fx_deviation_bps: int = 300,
        pending_review_retention: Duration | None = None,
        failure_topic: sns.ITopic | None = None,
        enriched_source: str = ENRICHMENT_SOURCE,
        published_sources: Sequence[str] = (RULES_SOURCE,),
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        state_machine_role: iam.IRole | None = None,
        rule_role: iam.IRole | None = None,
        alarms: AlarmSetting = True,
        alarm_topic: sns.ITopic | None = None,
        dashboard: bool | cloudwatch.Dashboard = True,
    ) -> None:
        """
        :param event_bus: where ``TransactionEnriched`` arrives and outcomes are published.
        :param encryption_key: for the dead-letter queue, which holds the enriched
            transactions the workflow could not be started for, and the table of pending
            reviews (held transactions). Default: a new key with rotation.
        :param operations_key: for the failure topic (ids and reason codes) and the log group.
            Default: ``encryption_key``.
        :param definition_file: your own States Language file. Default:
            ``statemachine/business_rules.asl.json``. It may use ``${EventBusName}``,
            ``${FailureTopicArn}``, ``${HighValueThreshold}`` and ``${MaxFxDeviationBps}`` (numbers,
            read with States.StringToJson), ``${WatchedMccs}`` (comma-separated, read with
            States.StringSplit), the event catalogue's names: each event name as itself
            (``${TransactionApproved}``) and each source as ``${<Name>Source}``
            (``${RulesSource}`` is ``payments.rules``), and ``${PendingReviewsTableName}``
            with ``${PendingReviewDays}``. A definition that names the table gets it (key
            ``transactionId``, time to live on ``expiresAt``), PutItem, UpdateItem and
            DeleteItem on it, and a rule that starts it with each ``ReviewDecided`` event of
            ``payments.review``; the built-in one stores each review it holds there and takes
            the decisions (docs/adr/0019-review-decisions-stored.md).
        :param definition_substitutions: more substitutions for your own definition.
        :param state_machine_type: EXPRESS (default: cheap per transaction, at-least-once, so
            everything downstream is idempotent) or STANDARD (exactly-once, with history).
        :param high_value_threshold: billing amount, in minor units, above which a transaction
            is held for review. Default 1,000,000 (10,000.00 in a two-decimal currency).
        :param watched_merchant_categories: MCCs that raise ``MerchantCategoryWarning``.
        :param max_fx_deviation_bps: how far, in basis points, the billing amount may stray from
            amount x conversion rate before the transaction is rejected. Default 300 (3 %).
        :param pending_review_retention: how long a review of a held transaction waits for a
            decision, in whole days (1 to 999): the table's time to live removes it at the
            end of the day it was held plus this. Default 90 days.
        :param failure_topic: notified of validation failures and of review decisions that
            were not taken. Default: a new encrypted topic.
        :param enriched_source: ``source`` of the ``TransactionEnriched`` events to match.
        :param published_sources: the ``source`` values the workflow may put on the bus.
            Default ``payments.rules``, what the built-in definition publishes; a definition
            of your own that publishes others names them here (any other is refused).
        :param state_machine_role: the role the workflow runs as, assumable by
            ``states.amazonaws.com``. Default: a new role. Given, it gets the workflow's grants
            added to its policy (put events of ``published_sources``, publish to the failure
            topic, the pending reviews table, log delivery, X-Ray).
        :param rule_role: the role EventBridge assumes to start the workflow for its rules,
            assumable by ``events.amazonaws.com``. Default: a new role that may start this
            workflow only. Given, it gets ``states:StartExecution`` on the workflow added.
            A role of either kind imported with ``mutable=False`` gets nothing added: grant it
            what the default role's policy holds yourself. No cdk-nag finding is acknowledged
            on a role you give.
        :param alarms: ``True`` (default): every alarm below at its default; ``False``: none;
            or a mapping of kind to an ``AlarmThreshold`` (replaces the default) or ``None``
            (turns the kind off). Kinds: ``dead_letter_queue`` (the rule target's dead-letter
            queue, any message visible, 1 minute), ``failed_executions``,
            ``timed_out_executions`` and ``throttled_executions`` (the workflow's
            ExecutionsFailed, ExecutionsTimedOut and ExecutionThrottled, at least 1 in 5
            minutes). See docs/runbook.md.
        :param alarm_topic: the SNS topic the alarms notify (alarm and OK). Default: a new
            topic encrypted with ``operations_key``, TLS only, that only this stack's alarms
            may publish to. A topic you give must let ``cloudwatch.amazonaws.com`` publish
            (``payment_stack.alarms.allow_alarms_to_publish``).
        :param dashboard: True: a CloudWatch dashboard of the stage (``<stack>-<construct
            path>``); a ``Dashboard``: the stage's section on it (the stack puts the three
            stages on one); False: none. It shows
            executions started and by result, the dead-letter queue, execution time, failures.
            Default True.
        """
        super().__init__(scope, construct_id)
        given_state_machine_role = role_prop(
            "RulesEngine", "state_machine_role", state_machine_role, "states"
        )
        given_rule_role = role_prop("RulesEngine", "rule_role", rule_role, "events")
        definition_file = file_path(
            "RulesEngine", "definition_file", definition_file or DEFAULT_DEFINITION
        )
        whole_number("RulesEngine", "high_value_threshold", high_value_threshold)
        whole_number("RulesEngine", "max_fx_deviation_bps", max_fx_deviation_bps)
        pending_review_days = _days(pending_review_retention or Duration.days(90))
        if isinstance(watched_merchant_categories, str):
            raise ValueError(
                "RulesEngine: watched_merchant_categories is a list of codes, e.g. ['7995'], "
                "not a string"
            )
        overridden = set(definition_substitutions or {}) & BUILT_IN_SUBSTITUTIONS
        if overridden:
            raise ValueError(
                f"RulesEngine: definition_substitutions may not replace {sorted(overridden)}; "
                "they come from the construct's props, which are validated, and from the event "
                "catalogue"
            )
        _validate(
            definition_file,
            high_value_threshold,
            watched_merchant_categories,
            max_fx_deviation_bps,
            set(definition_substitutions or {}) | BUILT_IN_SUBSTITUTIONS,
        )
        definition = definition_file.read_text()
        takes_decisions = "${" + PENDING_REVIEWS_TABLE + "}" in definition
        self._event_bus = event_bus
        self.encryption_key: kms.IKey = encryption_key or domain_key(
            self,
            "Key",
            description="Encrypts the rules engine's dead-letter queue, pending reviews, "
            "failure topic and logs",
            removal_policy=removal_policy,
        )
        self.pending_reviews_table: dynamodb.ITableV2 | None = None
        if takes_decisions:
            # Each held transaction, until a decision takes it or its time to live ends.
            self.pending_reviews_table = customer_key_table(
                self,
                "PendingReviews",
                encryption_key=self.encryption_key,
                partition_key=dynamodb.Attribute(
                    name=PENDING_REVIEWS_KEY, type=dynamodb.AttributeType.STRING
                ),
                time_to_live_attribute=PENDING_REVIEWS_TTL,
                removal_policy=removal_policy,
            )
        self.operations_key: kms.IKey = operations_key or self.encryption_key
        self.failure_topic: sns.ITopic = failure_topic or sns.Topic(
            self,
            "FailureTopic",
            display_name="Payment business rule failures",
            master_key=self.operations_key,
            enforce_ssl=True,
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            removal_policy=removal_policy,
            encryption_key=self.operations_key,
        )
        allow_logs_to_encrypt(self, self.operations_key)
        observability = Observability.of(self)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="Business rules for enriched payment transactions",
            # Inline rather than an S3 asset: the definition is small, diffs show in the
            # template, and the local runtime reads it from there.
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions={
                # The names the definition uses only: the rest would be noise in the template.
                **{
                    name: value
                    for name, value in EVENT_NAME_SUBSTITUTIONS.items()
                    if "${" + name + "}" in definition
                },
                "EventBusName": event_bus.event_bus_name,
                "FailureTopicArn": self.failure_topic.topic_arn,
                "HighValueThreshold": str(high_value_threshold),
                # Comma-separated: a JSON array's quotes would end the string it sits in.
                "WatchedMccs": ",".join(watched_merchant_categories),
                "MaxFxDeviationBps": str(max_fx_deviation_bps),
                **(
                    {
                        PENDING_REVIEWS_TABLE: self.pending_reviews_table.table_name,
                        "PendingReviewDays": str(pending_review_days),
                    }
                    if self.pending_reviews_table is not None
                    else {}
                ),
                **(definition_substitutions or {}),
            },
            state_machine_type=state_machine_type,
            # Errors only, and never the execution data: it holds card tokens and amounts.
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ERROR,
                include_execution_data=False,
            ),
            tracing_enabled=observability.workflow_tracing,
            role=given_state_machine_role,
        )
        # With sampled tracing, a share of executions is traced: each function the workflow
        # reaches follows its decision (PassThrough), so a sampled trace is whole.
        self.sampling_rule = observability.sampling_rule(
            self, "TraceSampling", self.state_machine.state_machine_name
        )
        grant_publish(event_bus, self.state_machine, published_sources)
        grant_publish_to_topic(self.failure_topic, self.state_machine)
        if self.pending_reviews_table is not None:
            grant_table(self.pending_reviews_table, self.state_machine, *PENDING_REVIEW_ACTIONS)

        allow_bus_rules_to_encrypt(self, self.encryption_key, event_bus)
        self.dead_letter_queue = dead_letter_queue(
            self, "DeadLetterQueue", self.encryption_key, removal_policy
        )
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=event_bus,
            description="Enriched transactions to the business rules workflow",
            event_pattern=events.EventPattern(
                source=[enriched_source], detail_type=[TRANSACTION_ENRICHED]
            ),
        )
        self.rule.add_target(self._target(given_rule_role))
        self.review_rule: events.Rule | None = None
        if takes_decisions:
            # The decisions start the same workflow (one role, one alarm, one set of outcome
            # states; ADR 0019), as the same target: the same dead-letter queue and role.
            self.review_rule = events.Rule(
                self,
                "ReviewRule",
                event_bus=event_bus,
                description="Review decisions on held transactions to the business rules workflow",
                event_pattern=events.EventPattern(
                    source=[REVIEW_SOURCE], detail_type=[REVIEW_DECIDED]
                ),
            )
            self.review_rule.add_target(self._target(given_rule_role))
        self._acknowledge_findings(
            owns_state_machine_role=given_state_machine_role is None,
            owns_rule_role=given_rule_role is None,
        )
        self.alarms = ConstructAlarms(
            self, "RulesEngine", alarms, ALARM_DEFAULTS, topic=alarm_topic, key=self.operations_key
        )
        self._alarm()
        self.dashboard: cloudwatch.Dashboard | None = (
            self._dashboard(dashboards.given(dashboard)) if dashboard else None
        )

    @property
    def alarm_topic(self) -> sns.ITopic | None:
        """The topic the alarms notify (None when every alarm is turned off)."""
        return self.alarms.topic

    def _alarm(self) -> None:
        self.alarms.dead_letter_queue(
            None,
            self.dead_letter_queue,
            "enriched transactions (and review decisions) the rule could not start the "
            "workflow for, after EventBridge's retries",
        )
        for kind, name, metric, meaning in (
            ("failed_executions", "ExecutionsFailed", self.metric_failed_executions(),
             "executions that failed: an outcome that was not published"),
            ("timed_out_executions", "ExecutionsTimedOut", self.metric_timed_out_executions(),
             "executions that ran past the workflow's timeout"),
            ("throttled_executions", "ExecutionThrottled", self.metric_throttled_executions(),
             "starts refused for lack of capacity, retried by EventBridge, then dead-lettered"),
        ):  # fmt: skip
            self.alarms.add(
                kind,
                f"Workflow-{name}",
                metric,
                f"The business rules workflow's {name}: {meaning}. See docs/runbook.md.",
            )

    def _dashboard(self, into: cloudwatch.Dashboard | None) -> cloudwatch.Dashboard:
        board = dashboards.stage_dashboard(
            self,
            "Rules",
            "TransactionEnriched (and ReviewDecided) → rule → business rules workflow → "
            "approved, rejected, held, inquiry completed on the bus",
            into=into,
        )
        machine = self.state_machine
        board.add_widgets(
            dashboards.graph(
                "Executions started",
                [machine.metric_started(statistic="Sum", label="Started")],
            ),
            dashboards.graph(
                "Executions by result",
                [
                    machine.metric_succeeded(statistic="Sum", label="Succeeded (published)"),
                    machine.metric_failed(statistic="Sum", label="Failed"),
                    machine.metric_timed_out(statistic="Sum", label="Timed out"),
                    machine.metric_aborted(statistic="Sum", label="Aborted"),
                ],
            ),
            dashboards.percentiles(
                "Execution time (ms)",
                lambda stat: machine.metric_time(statistic=stat, label=stat),
            ),
        )  # fmt: skip
        board.add_widgets(
            dashboards.queue_depths([("Rules", self.dead_letter_queue)]),
            dashboards.graph(
                "Failures",
                [
                    self.metric_failed_executions(label="Failed"),
                    self.metric_timed_out_executions(label="Timed out"),
                    self.metric_throttled_executions(label="Throttled"),
                ],
            ),
            dashboards.alarm_states(self.alarms.alarms)
            if self.alarms.alarms
            else dashboards.graph("Executions started", [machine.metric_started(statistic="Sum")]),
        )
        return board

    def _target(self, role: iam.IRole | None) -> targets.SfnStateMachine:
        return targets.SfnStateMachine(
            self.state_machine,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=RULE_TARGET_RETRY_ATTEMPTS,
            max_event_age=RULE_TARGET_MAX_EVENT_AGE,
            role=role,
        )

    def grant_review_decisions(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` (a case tool's role) put ``ReviewDecided`` events on the bus, and
        no other event: ``events:PutEvents`` with source ``payments.review`` and detail type
        ``ReviewDecided`` only.

        A decision takes effect only for a transaction the rules held: the outcome is built
        from the stored review, never from the decision's detail, so the grant cannot approve
        a transaction the rules never saw. A ``ValueError`` if the definition takes no
        decisions (it names no ``${PendingReviewsTableName}``).
        """
        if self.review_rule is None:
            raise ValueError(
                "RulesEngine: grant_review_decisions needs a definition that takes review "
                "decisions (one that names ${PendingReviewsTableName}, as the built-in one does)"
            )
        return grant_publish(
            self._event_bus, grantee, [REVIEW_SOURCE], detail_types=[REVIEW_DECIDED]
        )

    # ``props`` of every metric_* method: any ``cloudwatch.MetricOptions`` field, over the
    # defaults (1 minute; Sum for counts of executions, Maximum for a queue depth).

    def metric_failed_executions(self, **props: Any) -> cloudwatch.Metric:
        """Executions that failed: an outcome that could not be published. Alarm above zero."""
        return self.state_machine.metric_failed(**metric_options(SUM_PER_MINUTE, **props))

    def metric_timed_out_executions(self, **props: Any) -> cloudwatch.Metric:
        """Executions that ran past the workflow's timeout. Alarm above zero."""
        return self.state_machine.metric_timed_out(**metric_options(SUM_PER_MINUTE, **props))

    def metric_throttled_executions(self, **props: Any) -> cloudwatch.Metric:
        """Starts refused for lack of capacity: EventBridge retries them, then dead-letters."""
        return self.state_machine.metric_throttled(**metric_options(SUM_PER_MINUTE, **props))

    def metric_dead_letter_messages(self, **props: Any) -> cloudwatch.Metric:
        """Enriched transactions the rule could not start a workflow for, after retries."""
        return self.dead_letter_queue.metric_approximate_number_of_messages_visible(
            **metric_options(**props)
        )

    def _acknowledge_findings(self, *, owns_state_machine_role: bool, owns_rule_role: bool) -> None:
        acknowledge(
            self.state_machine,
            "AwsSolutions-SF1",
            "Logging is at ERROR without execution data on purpose: ALL would write every "
            "transaction's card token and amounts to CloudWatch Logs.",
        )
        # Both roles this construct creates are below the state machine (CDK puts the rule
        # target's role there); a role given lives elsewhere and is the user's to acknowledge.
        if owns_state_machine_role:
            acknowledge(
                self.state_machine,
                "AwsSolutions-IAM5[Resource::*]",
                "Log delivery (logs:CreateLogDelivery and friends) and X-Ray accept only '*' as "
                "resource; AWS documents no narrower form for them.",
            )
        if owns_state_machine_role and owns_rule_role:
            # The workflow's role and the role its rule starts it with.
            acknowledge_inline_policy(self.state_machine)
        elif owns_state_machine_role or owns_rule_role:
            acknowledge_inline_policy(
                self.state_machine.role
                if owns_state_machine_role
                else self.state_machine.node.find_child(RULE_ROLE_ID)
            )


def _days(retention: Duration) -> int:
    """``pending_review_retention`` in whole days, refused outside 1 to 999."""
    if Token.is_unresolved(retention.to_seconds()):
        raise ValueError("RulesEngine: pending_review_retention must be known at synth")
    seconds = retention.to_seconds()
    days, rest = divmod(int(seconds), 86_400)
    if rest or seconds != int(seconds) or not 1 <= days <= MAX_PENDING_REVIEW_DAYS:
        raise ValueError(
            "RulesEngine: pending_review_retention must be whole days, from 1 to "
            f"{MAX_PENDING_REVIEW_DAYS}, got {retention.to_human_string()}"
        )
    return days


def _validate(
    definition_file: Path,
    high_value_threshold: int,
    watched_merchant_categories: Sequence[str],
    max_fx_deviation_bps: int,
    substitutions: set[str],
) -> None:
    if not definition_file.is_file():
        raise ValueError(f"RulesEngine: no definition file at {definition_file}")
    text = definition_file.read_text()
    missing = set(re.findall(r"\$\{(\w+)\}", text)) - substitutions
    if missing:
        raise ValueError(
            f"RulesEngine: {definition_file.name} uses {sorted(missing)} with no substitution; "
            "pass them in definition_substitutions (an unreplaced ${Name} deploys as literal text)"
        )
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"RulesEngine: {definition_file} is not valid JSON ({error.msg} at line "
            f"{error.lineno}); keep substitutions inside strings"
        ) from None
    if not Token.is_unresolved(high_value_threshold) and high_value_threshold <= 0:
        raise ValueError(
            f"RulesEngine: high_value_threshold must be a positive amount in minor units, "
            f"got {high_value_threshold}"
        )
    bad = [m for m in watched_merchant_categories if not re.fullmatch(r"\d{4}", m)]
    if bad:
        raise ValueError(
            f"RulesEngine: merchant category codes are four digits; got {', '.join(bad)}"
        )
    if not Token.is_unresolved(max_fx_deviation_bps) and not 0 <= max_fx_deviation_bps <= 10_000:
        raise ValueError(
            f"RulesEngine: max_fx_deviation_bps must be between 0 and 10000, "
            f"got {max_fx_deviation_bps}"
        )
