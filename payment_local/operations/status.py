"""What is waiting where: queue depths, dead-letter queues, and alarm states.

On AWS the alarms are CloudWatch's (by the stack's alarm name prefix). Locally there is no
CloudWatch: the alarms on a queue's depth are evaluated here against the same threshold
(any message in a dead-letter queue), and the others are listed as not evaluated.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from payment_local.operations.dead_letters import (
    HASH_SUFFIX,
    dead_letter_queues,
    main_queues,
    user_name,
)
from payment_local.operations.planes import Plane, dead_letter_url
from payment_local.operations.redrive import depth

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass
class QueueStatus:
    name: str
    visible: int
    in_flight: int
    dead_letter: bool
    kinds: list[str] = field(default_factory=list)


@dataclass
class Status:
    where: str
    queues: list[QueueStatus]
    alarms: list[dict[str, Any]]  # name, state, reason

    def to_json(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "queues": [q.__dict__ for q in self.queues],
            "alarms": self.alarms,
        }


def status(plane: Plane) -> Status:
    queues = []
    for logical_id in main_queues(plane.template):
        visible, in_flight = depth(plane, plane.ref(logical_id))
        # The work queue's full name ("posting-queue"): "posting" is its dead-letter queue.
        name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", HASH_SUFFIX.sub("", logical_id)).lower()
        queues.append(QueueStatus(name, visible, in_flight, False))
    by_logical: dict[str, int] = {}
    for name, queue in dead_letter_queues(plane.template).items():
        visible, in_flight = depth(plane, dead_letter_url(plane, queue))
        by_logical[queue.logical_id] = visible
        queues.append(QueueStatus(name, visible, in_flight, True, queue.kinds))
    deployed = plane.alarms()
    if deployed is not None:
        alarms = [
            {"name": a["AlarmName"], "state": a["StateValue"], "reason": a.get("StateReason", "")}
            for a in deployed
        ]
    else:
        alarms = _local_alarms(plane, by_logical)
    return Status(plane.where, queues, alarms)


def _local_alarms(plane: Plane, depths: dict[str, int]) -> list[dict[str, Any]]:
    alarms = []
    for logical_id, resource in sorted(plane.template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties", {})
        queue = _queue_of(props)
        compare = _COMPARE.get(str(props.get("ComparisonOperator")))
        if (
            props.get("Namespace") == "AWS/SQS"
            and props.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and queue in depths
            and compare is not None
        ):
            value, threshold = depths[queue], float(props.get("Threshold", 1))
            firing = compare(value, threshold)
            alarms.append(
                {
                    "name": user_name(logical_id),
                    "state": "ALARM" if firing else "OK",
                    "reason": f"{value} visible (threshold {threshold:g})",
                }
            )
        else:
            alarms.append(
                {
                    "name": user_name(logical_id),
                    "state": "NOT EVALUATED",
                    "reason": "CloudWatch metrics are not produced locally",
                }
            )
    return alarms


def _queue_of(props: dict[str, Any]) -> str | None:
    for dimension in props.get("Dimensions", []) or []:
        value = dimension.get("Value")
        if dimension.get("Name") == "QueueName" and isinstance(value, dict):
            attribute = value.get("Fn::GetAtt")
            if isinstance(attribute, list):
                return str(attribute[0])
    return None
