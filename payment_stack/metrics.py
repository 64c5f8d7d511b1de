"""One shape for every construct's ``metric_*`` methods: defaults that suit an alarm, and any
``cloudwatch.MetricOptions`` field (period, statistic, label, unit, color, dimensions_map,
account, region) passed through to override them, as CDK's own ``metric*`` methods take them.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration

# What an alarm on a pipeline metric wants unless told otherwise: one-minute resolution, and
# the worst value in the period (a queue depth averaged over a minute hides a spike).
ALARM_DEFAULTS: dict[str, Any] = {"period": Duration.minutes(1), "statistic": "Maximum"}
# For counts (errors, throttles, failed executions): how many in the minute.
SUM_PER_MINUTE: dict[str, Any] = {"period": Duration.minutes(1), "statistic": "Sum"}


def options(defaults: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The metric options: ``defaults`` (``ALARM_DEFAULTS`` unless given), then ``overrides``."""
    return {**(ALARM_DEFAULTS if defaults is None else defaults), **overrides}
