"""Alarms every construct creates by default, the operations topic they notify, and the
names that let a ``status`` command find them (docs/adr/0020-alarms-and-dashboards-by-default.md).

Each construct takes the same two props:

- ``alarms``: ``True`` (default: every alarm of the construct, at its default threshold),
  ``False`` (none), or a mapping from an alarm kind (e.g. ``"dead_letter_queue"``) to an
  ``AlarmThreshold`` that replaces its default, or to ``None``, which turns that kind off.
  An unknown kind is refused with the kinds the construct knows.
- ``alarm_topic``: the SNS topic the alarms notify. Default: a topic of the construct's own,
  encrypted with its operations key, TLS only, that CloudWatch alarms of this stack (and no
  other) may publish to. A topic you give is used as it is: its policy and its key's policy
  must let ``cloudwatch.amazonaws.com`` publish (``allow_alarms_to_publish`` writes both).

Every alarm is named ``<stack name>-<construct path>-<resource>-<what>`` so that all of a
stack's alarms share the prefix ``<stack name>-`` (the stack's ``AlarmNamePrefix`` output).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack.keys import allow_alarms_to_encrypt
from payment_stack.payment_function import METRICS_NAMESPACE

CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
# Dashboard names take letters, digits, "-" and "_" only.
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class AlarmThreshold:
    """When an alarm fires: its metric's statistic over ``period`` is at or above
    ``threshold`` in ``datapoints_to_alarm`` (default: all) of the last
    ``evaluation_periods`` periods. Missing data (no traffic) never breaches."""

    threshold: float
    period: Duration = field(default_factory=lambda: Duration.minutes(1))
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise TypeError(f"AlarmThreshold: threshold must be a number, got {self.threshold!r}")
        if not isinstance(self.evaluation_periods, int) or self.evaluation_periods < 1:
            raise ValueError("AlarmThreshold: evaluation_periods must be a whole number >= 1")
        datapoints = self.datapoints_to_alarm
        if datapoints is not None and not 1 <= datapoints <= self.evaluation_periods:
            raise ValueError(
                "AlarmThreshold: datapoints_to_alarm must be between 1 and evaluation_periods"
            )
        if self.period.to_seconds() not in (10, 30) and self.period.to_seconds() % 60:
            raise ValueError(
                "AlarmThreshold: period must be 10 s, 30 s or a whole number of minutes"
            )


AlarmSetting = bool | Mapping[str, AlarmThreshold | None]


# The defaults, named once so the runbook, the ADR and the constructs say the same thing.
# Any message in a dead-letter queue: something failed every retry and waits for a person.
DEAD_LETTER_QUEUE = AlarmThreshold(1)
# Function failures and throttles, summed over five minutes: one is worth a look, since each
# is a retry on the way to a dead-letter queue.
FUNCTION_ERRORS = AlarmThreshold(1, period=Duration.minutes(5))
FUNCTION_THROTTLES = AlarmThreshold(1, period=Duration.minutes(5))
# The workflow: a failed or timed-out execution is an outcome that was not published; a
# throttled start is retried by EventBridge, then dead-lettered.
WORKFLOW_FAILURES = AlarmThreshold(1, period=Duration.minutes(5))
# The pipe's failed executions and stages (AWS/EventBridge/Pipes): retried by the pipe, then
# dead-lettered; one in five minutes is worth a look.
PIPE_FAILURES = AlarmThreshold(1, period=Duration.minutes(5))
# The oldest approved transaction waiting to post: five minutes for three minutes in a row
# is a posting system (or max_concurrency) that does not keep up.
OLDEST_MESSAGE_AGE_SECONDS = AlarmThreshold(300, evaluation_periods=3)
# Refusals by the posting system end as PostingFailed events for reconciliation; ten in five
# minutes is a burst (a closed account range, a core system refusing everything).
POSTING_FAILURES = AlarmThreshold(10, period=Duration.minutes(5))
# The pipe five minutes behind the table's stream for three minutes in a row; at
# maximum_record_age (1 hour) records would start going to the dead-letter queue.
INGEST_LAG_SECONDS = AlarmThreshold(300, evaluation_periods=3)


def stack_alarm_prefix(scope: Construct) -> str:
    """What every alarm of ``scope``'s stack is named with first: ``<stack name>-``."""
    return f"{Stack.of(scope).stack_name}-"


def construct_name(scope: Construct) -> str:
    """``scope``'s path below its stack, as a name part: ``Posting`` or ``Outer-Posting``."""
    stack_path = Stack.of(scope).node.path
    relative = scope.node.path[len(stack_path) :].strip("/")
    return _NOT_IN_A_NAME.sub("-", relative.replace("/", "-")) or "Stack"


def dashboard_name(scope: Construct) -> str:
    """``<stack name>-<construct path>``, e.g. ``PaymentPosting-dev-Ingest``."""
    return _NOT_IN_A_NAME.sub("-", f"{Stack.of(scope).stack_name}-{construct_name(scope)}")


def powertools_metric(
    service: str, metric_name: str, statistic: str = "Sum", period: Duration | None = None
) -> cloudwatch.Metric:
    """A metric a handler writes with Powertools (EMF): the project's namespace, dimension
    ``service`` (Powertools adds it from POWERTOOLS_SERVICE_NAME)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period or Duration.minutes(1),
    )


def allow_alarms_to_publish(topic: sns.Topic, key: kms.IKey | None) -> None:
    """Let this stack's CloudWatch alarms (by name prefix) publish to ``topic``, and use
    ``key`` (the topic's) to do so: a topic policy statement and a key policy statement,
    both bound to this account and to alarm ARNs of the stack's prefix."""
    stack = Stack.of(topic)
    alarm_arns = stack.format_arn(
        service="cloudwatch",
        resource="alarm",
        resource_name=f"{stack_alarm_prefix(topic)}*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisStackPublish",
            principals=[iam.ServicePrincipal(CLOUDWATCH_SERVICE)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": alarm_arns},
            },
        )
    )
    if key is not None:
        allow_alarms_to_encrypt(topic, key, alarm_arns)


def operations_topic(scope: Construct, construct_id: str, key: kms.IKey) -> sns.Topic:
    """The topic alarms notify: encrypted with ``key``, TLS only (a Deny of any request
    without TLS), writable by this stack's alarms. Subscribe the on-call address to it."""
    topic = sns.Topic(
        scope,
        construct_id,
        display_name="Payment posting operations alarms",
        master_key=key,
        enforce_ssl=True,
    )
    allow_alarms_to_publish(topic, key)
    return topic


class ConstructAlarms:
    """The alarms of one construct: its kinds' thresholds, as its ``alarms`` prop sets them,
    and the topic they notify."""

    def __init__(
        self,
        scope: Construct,
        owner: str,
        setting: AlarmSetting,
        defaults: Mapping[str, AlarmThreshold],
        *,
        topic: sns.ITopic | None,
        key: kms.IKey,
    ) -> None:
        self._scope = scope
        self.thresholds = _thresholds(owner, setting, defaults)
        self.alarms: list[cloudwatch.Alarm] = []
        self._prefix = f"{stack_alarm_prefix(scope)}{construct_name(scope)}"
        self._topic = topic
        self._key = key

    @property
    def topic(self) -> sns.ITopic | None:
        """Where the alarms go; created on the first alarm when none was given."""
        return self._topic

    def add(
        self,
        kind: str,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
    ) -> cloudwatch.Alarm | None:
        """An alarm on ``metric`` at the threshold of ``kind``, named ``<prefix>-<name>``; None
        when that kind is turned off."""
        threshold = self.thresholds.get(kind)
        if threshold is None:
            return None
        if self._topic is None:
            self._topic = operations_topic(self._scope, "OperationsTopic", self._key)
        if isinstance(metric, cloudwatch.Metric):
            metric = metric.with_(period=threshold.period)
        alarm = cloudwatch.Alarm(
            self._scope,
            f"{_NOT_IN_A_NAME.sub('', name)}Alarm",
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold.threshold,
            evaluation_periods=threshold.evaluation_periods,
            datapoints_to_alarm=threshold.datapoints_to_alarm,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(self._topic)
        alarm.add_alarm_action(action)
        # The all-clear too, so whoever was paged learns that it is over.
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm

    def dead_letter_queue(self, name: str | None, queue: sqs.IQueue, holds: str) -> None:
        """Any message visible in ``queue`` (the construct's own when ``name`` is None);
        ``holds`` says what lands there."""
        self.add(
            "dead_letter_queue",
            f"{name}-DeadLetterQueue" if name else "DeadLetterQueue",
            queue.metric_approximate_number_of_messages_visible(statistic="Maximum"),
            f"Messages in the dead-letter queue of {self._prefix}{'-' + name if name else ''}: "
            f"{holds}. See docs/runbook.md.",
        )

    def function(self, name: str, function: lambda_.IFunction) -> None:
        """Errors and throttles of ``function``."""
        self.add(
            "function_errors",
            f"{name}-Errors",
            function.metric_errors(statistic="Sum"),
            f"The {name} function failed invocations (each is retried, then dead-lettered). "
            "See docs/runbook.md.",
        )
        self.add(
            "function_throttles",
            f"{name}-Throttles",
            function.metric_throttles(statistic="Sum"),
            f"The {name} function was throttled (not enough concurrency). See docs/runbook.md.",
        )


def _thresholds(
    owner: str, setting: AlarmSetting, defaults: Mapping[str, AlarmThreshold]
) -> dict[str, AlarmThreshold]:
    """The threshold of each kind that is on: the defaults, with ``setting`` over them."""
    if isinstance(setting, bool):
        return dict(defaults) if setting else {}
    if not isinstance(setting, Mapping):
        raise TypeError(
            f"{owner}: alarms must be True, False or a mapping of alarm kind to "
            f"AlarmThreshold or None, got {type(setting).__name__}"
        )
    unknown = set(setting) - set(defaults)
    if unknown:
        raise ValueError(
            f"{owner}: no alarm kind {', '.join(sorted(map(repr, unknown)))}; its kinds are "
            f"{', '.join(sorted(defaults))}"
        )
    chosen: dict[str, AlarmThreshold] = {}
    for kind, default in defaults.items():
        value = setting.get(kind, default)
        if value is None:
            continue
        if not isinstance(value, AlarmThreshold):
            raise TypeError(
                f"{owner}: alarms[{kind!r}] must be an AlarmThreshold or None, "
                f"got {type(value).__name__}"
            )
        chosen[kind] = value
    return chosen
