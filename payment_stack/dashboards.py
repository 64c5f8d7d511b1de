"""CloudWatch dashboards: a section per pipeline stage (ingest, rules, posting), laid out the
same way: what came in, what it became, what waits in dead-letter queues, how long it took,
what failed. The stack puts the three sections, in the order a transaction flows, on one
dashboard; a construct used on its own makes a dashboard of its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack.alarms import dashboard_name

# A dashboard is 24 units wide: three graphs to a row.
GRAPH_WIDTH = 8
GRAPH_HEIGHT = 6


# The median shows a slowdown; the tail shows who waits on it.
PERCENTILES = ("p50", "p99")


def stage_dashboard(
    scope: Construct, title: str, flow: str, into: cloudwatch.Dashboard | None = None
) -> cloudwatch.Dashboard:
    """The dashboard a stage's widgets go on, headed by the stage's flow: ``into``, when the
    stage is a section of a larger one, or a dashboard of its own named
    ``<stack name>-<construct path>``."""
    dashboard = into or cloudwatch.Dashboard(
        scope,
        "Dashboard",
        dashboard_name=dashboard_name(scope),
        default_interval=Duration.hours(3),
    )
    dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"# {title}\n{flow}", width=24, height=2))
    return dashboard


def given(dashboard: bool | cloudwatch.Dashboard) -> cloudwatch.Dashboard | None:
    """The dashboard a construct's ``dashboard=`` names, when it names one, not True."""
    return dashboard if isinstance(dashboard, cloudwatch.Dashboard) else None


def graph(
    title: str, metrics: Sequence[cloudwatch.IMetric], *, unit_label: str = "count"
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title,
        left=list(metrics),
        left_y_axis=cloudwatch.YAxisProps(label=unit_label, show_units=False, min=0),
        width=GRAPH_WIDTH,
        height=GRAPH_HEIGHT,
    )


def percentiles(
    title: str, metric: Callable[[str], cloudwatch.IMetric], *, unit_label: str = "ms"
) -> cloudwatch.GraphWidget:
    """The median and the tail of a duration: ``metric(statistic)`` for p50 and p99."""
    return graph(title, [metric(statistic) for statistic in PERCENTILES], unit_label=unit_label)


def queue_depths(queues: Sequence[tuple[str, sqs.IQueue]]) -> cloudwatch.GraphWidget:
    """Messages visible in each queue, labelled by name."""
    return graph(
        "Dead-letter queues (messages visible)",
        [
            queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=Duration.minutes(1), label=name
            )
            for name, queue in queues
        ],
        unit_label="messages",
    )


def alarm_states(alarms: Sequence[cloudwatch.IAlarm]) -> cloudwatch.AlarmStatusWidget:
    return cloudwatch.AlarmStatusWidget(
        title="Alarms",
        alarms=list(alarms),
        width=GRAPH_WIDTH,
        height=GRAPH_HEIGHT,
    )


def labelled(metric: cloudwatch.Metric, label: str) -> cloudwatch.Metric:
    return metric.with_(label=label, period=Duration.minutes(1))
