"""How much the functions and the workflow log and trace: one setting per stage.

A construct reads it from the construct tree's context (``Observability.of``), so the stack sets
it once (``apply``) and a stack of yours that installs the constructs can too; without it, the
defaults below. Trade-offs: docs/adr/0023-cost-reductions.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_xray as xray
from constructs import Construct

CONTEXT_KEY = "payment-posting:observability"
# The levels a stage may set. Not WARN and above: Lambda gives a line without a ``level`` (an
# embedded-metric line, the runtime's own error report) the level INFO, so a function
# filtered at WARN would lose its metrics, and the alarms and latency built on them.
LOG_LEVELS = ("TRACE", "DEBUG", "INFO")
FILTERING_AWAY_METRICS = ("WARN", "ERROR", "FATAL")
TRACING_MODES = ("sampled", "active", "off")
# After the rules a team writes itself (lower numbers match first) and before the default rule.
SAMPLING_RULE_PRIORITY = 9000
# cdk.json's keys and the fields they set.
_FIELDS = {"logLevel": "log_level", "tracing": "tracing", "traceSampleRate": "trace_sample_rate"}


@dataclass(frozen=True)
class Observability:
    """
    :param log_level: the lowest level the functions' application logs keep (Lambda filters
        the JSON lines below it before they reach CloudWatch Logs, which bills every byte):
        TRACE, DEBUG or INFO. Higher levels are refused: Lambda treats a line without a level,
        as every embedded-metric line is, as INFO, and would drop the metrics.
    :param tracing: ``sampled`` traces a share of the workflow's executions, and each
        function is traced when its caller's request was (PassThrough); ``active`` traces
        every function as Lambda samples it (1 request a second and 5% of the rest, per
        function) and the workflow as X-Ray's default rule does; ``off`` traces nothing.
    :param trace_sample_rate: with ``sampled``, the share of the workflow's executions traced
        (between 0 and 1). No reservoir: a quiet hour is sampled at the same rate as a busy one.
    """

    log_level: str = "INFO"
    tracing: str = "sampled"
    trace_sample_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.log_level in FILTERING_AWAY_METRICS:
            raise ValueError(
                f"log level {self.log_level} would drop the functions' metrics (Lambda gives an "
                "embedded-metric line, which has no level, the level INFO), and with them the "
                f"alarms and the latency metric; use one of {', '.join(LOG_LEVELS)}"
            )
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.tracing not in TRACING_MODES:
            raise ValueError(
                f"tracing must be one of {', '.join(TRACING_MODES)}, got {self.tracing!r}"
            )
        rate = self.trace_sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError(f"trace sample rate must be between 0 and 1, got {rate!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Observability:
        """From cdk.json's keys: ``logLevel``, ``tracing``, ``traceSampleRate``."""
        keys = {
            "logLevel": "log_level",
            "tracing": "tracing",
            "traceSampleRate": "trace_sample_rate",
        }
        unknown = set(values) - set(keys)
        if unknown:
            raise ValueError(f"unknown observability settings: {', '.join(sorted(unknown))}")
        return cls(**{keys[key]: value for key, value in values.items()})

    def to_dict(self) -> dict[str, Any]:
        names = {
            "log_level": "logLevel",
            "tracing": "tracing",
            "trace_sample_rate": "traceSampleRate",
        }
        return {names[key]: value for key, value in asdict(self).items()}

    def apply(self, scope: Construct) -> None:
        """Make this the setting of every construct created under ``scope`` from now on."""
        scope.node.set_context(CONTEXT_KEY, self.to_dict())

    @classmethod
    def of(cls, scope: Construct) -> Observability:
        """The setting that applies at ``scope``: the nearest ``apply`` above it, or the
        ``payment-posting:observability`` context, or the defaults."""
        values = scope.node.try_get_context(CONTEXT_KEY)
        return cls.from_dict(values) if values else cls()

    @property
    def function_tracing(self) -> lambda_.Tracing:
        return {
            "sampled": lambda_.Tracing.PASS_THROUGH,
            "active": lambda_.Tracing.ACTIVE,
            "off": lambda_.Tracing.DISABLED,
        }[self.tracing]

    @property
    def workflow_tracing(self) -> bool:
        return self.tracing != "off"

    @property
    def application_log_level(self) -> lambda_.ApplicationLogLevel:
        return lambda_.ApplicationLogLevel(self.log_level)

    def sampling_rule(
        self, scope: Construct, construct_id: str, service_name: str
    ) -> Construct | None:
        """With ``sampled`` tracing, the X-Ray rule that samples ``service_name`` (a state
        machine's name) at the rate; otherwise none, and X-Ray's default rule applies."""
        if self.tracing != "sampled":
            return None
        return xray.CfnSamplingRule(
            scope,
            construct_id,
            sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
                # At most 32 characters, unique in the account and Region.
                rule_name=f"pp-{scope.node.addr[:28]}",
                priority=SAMPLING_RULE_PRIORITY,
                fixed_rate=self.trace_sample_rate,
                reservoir_size=0,
                service_name=service_name,
                service_type="AWS::StepFunctions::StateMachine",
                host="*",
                http_method="*",
                url_path="*",
                resource_arn="*",
                version=1,
            ),
        )
