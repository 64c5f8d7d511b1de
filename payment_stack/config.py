"""Per-stage settings, read from the ``stages`` context in cdk.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from payment_stack.observability import Observability

# The retentions CloudWatch Logs offers that a payments team is likely to pick, in days.
RETENTION_BY_DAYS = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
STAGES_CONTEXT_KEY = "payment-posting:stages"
STAGE_CONTEXT_KEY = "stage"
DEFAULT_STAGE = "dev"


@dataclass(frozen=True)
class StageConfig:
    """What differs between stages; everything else is the same everywhere on purpose."""

    name: str
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    sample_source: bool = False
    # How long a record stays in the transactions table and the quarantine (their TTL).
    data_retention_days: int = 90
    # How long the bus archive keeps the events a replay starts from (default: as long as the
    # data): a replay can reach back this far.
    archive_retention_days: int = 90
    # How long the posting function's event source gathers a batch, in seconds (0: none,
    # latency first). A busy queue fills batches at once; a quiet one waits up to this.
    posting_batching_window_seconds: int = 0
    # Log level and tracing of the functions and the workflow.
    observability: Observability = field(default_factory=Observability)

    @classmethod
    def from_context(cls, scope: Construct) -> StageConfig:
        """The stage named by ``-c stage=NAME`` (default ``dev``), as cdk.json defines it."""
        name = scope.node.try_get_context(STAGE_CONTEXT_KEY) or DEFAULT_STAGE
        stages: dict[str, dict[str, Any]] = scope.node.try_get_context(STAGES_CONTEXT_KEY) or {}
        if name not in stages:
            known = ", ".join(sorted(stages)) or "none"
            raise ValueError(
                f"stage {name!r} is not defined in the {STAGES_CONTEXT_KEY!r} context of "
                f"cdk.json (defined: {known})"
            )
        return cls.from_dict(name, stages[name])

    @classmethod
    def from_dict(cls, name: str, values: dict[str, Any]) -> StageConfig:
        known = {
            "removalPolicy", "logRetentionDays", "sampleSource", "dataRetentionDays",
            "archiveRetentionDays", "postingBatchingWindowSeconds", "observability",
        }  # fmt: skip
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"stage {name!r} has unknown settings: {', '.join(sorted(unknown))}")
        policy = values.get("removalPolicy", "retain")
        if policy not in ("retain", "destroy"):
            raise ValueError(
                f"stage {name!r}: removalPolicy must be 'retain' or 'destroy', got {policy!r}"
            )
        days = values.get("logRetentionDays", 90)
        retention = RETENTION_BY_DAYS.get(days) if isinstance(days, int) else None
        if retention is None:
            choices = ", ".join(str(d) for d in RETENTION_BY_DAYS)
            raise ValueError(
                f"stage {name!r}: logRetentionDays must be one of {choices}, got {days!r}"
            )
        sample_source = values.get("sampleSource", False)
        if not isinstance(sample_source, bool):
            raise ValueError(
                f"stage {name!r}: sampleSource must be true or false, got {sample_source!r}"
            )
        data_days = values.get("dataRetentionDays", 90)
        if isinstance(data_days, bool) or not isinstance(data_days, int) or data_days < 1:
            raise ValueError(
                f"stage {name!r}: dataRetentionDays must be a whole number of days, at least 1, "
                f"got {data_days!r}"
            )
        archive_days = values.get("archiveRetentionDays", data_days)
        if isinstance(archive_days, bool) or not isinstance(archive_days, int) or archive_days < 1:
            raise ValueError(
                f"stage {name!r}: archiveRetentionDays must be a whole number of days, at least "
                f"1, got {archive_days!r}"
            )
        window = values.get("postingBatchingWindowSeconds", 0)
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 300:
            raise ValueError(
                f"stage {name!r}: postingBatchingWindowSeconds must be a whole number of "
                f"seconds from 0 to 300 (Lambda's limit), got {window!r}"
            )
        observed = values.get("observability", {})
        try:
            if not isinstance(observed, dict):
                raise ValueError(f"must be an object, got {observed!r}")
            observability = Observability.from_dict(observed)
        except (TypeError, ValueError) as error:
            raise ValueError(f"stage {name!r}: observability: {error}") from None
        return cls(
            name=name,
            observability=observability,
            data_retention_days=data_days,
            archive_retention_days=archive_days,
            posting_batching_window_seconds=window,
            removal_policy=RemovalPolicy.DESTROY if policy == "destroy" else RemovalPolicy.RETAIN,
            log_retention=retention,
            sample_source=sample_source,
        )
