"""What each stage spends on: tracing by sampling, a log level, the archive's roots and
retention, the posting batching window (docs/adr/0023-cost-reductions.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import aws_events as events
from aws_cdk.assertions import Template

from payment_stack import StageConfig
from payment_stack.ingest_pipe import IngestPipe
from payment_stack.observability import Observability
from payment_stack.rules_engine import RulesEngine
from tests.infra.support import Synthesized, bare_stack, stage_values


def of_type(template: Template, kind: str) -> dict[str, Mapping[str, Any]]:
    return dict(template.find_resources(kind))


def functions(template: Template) -> list[Mapping[str, Any]]:
    return [r["Properties"] for r in of_type(template, "AWS::Lambda::Function").values()]


def policy_actions(template: Template) -> set[str]:
    actions: set[str] = set()
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "level", "rate"), [("dev", "INFO", 0.05), ("prod", "INFO", 0.01)]
)
def test_each_stage_logs_at_its_level_and_samples_its_share_of_executions(
    request: pytest.FixtureRequest, stage: str, level: str, rate: float
) -> None:
    synthesized: Synthesized = request.getfixturevalue(stage)
    template = synthesized.template

    for function in functions(template):
        assert function["LoggingConfig"]["ApplicationLogLevel"] == level
        # Traced when the caller's request was sampled, so a sampled trace is whole.
        assert function["TracingConfig"] == {"Mode": "PassThrough"}
    (machine_id,) = of_type(template, "AWS::StepFunctions::StateMachine")
    (rule,) = [r["Properties"]["SamplingRule"] for r in of_type(
        template, "AWS::XRay::SamplingRule").values()]  # fmt: skip
    assert rule["FixedRate"] == rate
    assert rule["ReservoirSize"] == 0
    assert rule["ServiceName"] == {"Fn::GetAtt": [machine_id, "Name"]}
    assert rule["ServiceType"] == "AWS::StepFunctions::StateMachine"
    assert len(rule["RuleName"]) <= 32  # X-Ray's limit


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "window", "archive_days"), [("dev", None, 7), ("prod", 1, 35)])
def test_each_stage_batches_postings_and_keeps_its_archive_as_configured(
    request: pytest.FixtureRequest, stage: str, window: int | None, archive_days: int
) -> None:
    template = request.getfixturevalue(stage).template

    (mapping,) = of_type(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"].get("MaximumBatchingWindowInSeconds") == window
    (archive,) = of_type(template, "AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == archive_days


def _rules_engine_with(observability: Observability) -> Template:
    stack = bare_stack()
    observability.apply(stack)
    RulesEngine(stack, "Rules", event_bus=events.EventBus(stack, "Bus"))
    IngestPipe(stack, "Ingest", alarms=False, dashboard=False)
    return Template.from_stack(stack)


@pytest.mark.slow
def test_tracing_off_traces_nothing_and_grants_no_xray_write() -> None:
    template = _rules_engine_with(Observability(tracing="off"))

    assert all("TracingConfig" not in function for function in functions(template))
    (machine,) = of_type(template, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"].get("TracingConfiguration", {"Enabled": False}) == {
        "Enabled": False
    }
    assert of_type(template, "AWS::XRay::SamplingRule") == {}
    assert {action for action in policy_actions(template) if action.startswith("xray:")} == set()


@pytest.mark.slow
def test_active_tracing_traces_every_function_by_lambdas_own_sampling() -> None:
    template = _rules_engine_with(Observability(tracing="active", log_level="DEBUG"))

    assert {function["TracingConfig"]["Mode"] for function in functions(template)} == {"Active"}
    assert {f["LoggingConfig"]["ApplicationLogLevel"] for f in functions(template)} == {"DEBUG"}
    assert of_type(template, "AWS::XRay::SamplingRule") == {}
    assert "xray:PutTraceSegments" in policy_actions(template)


@pytest.mark.parametrize(
    ("observability", "error"),
    [
        ({"logLevel": "LOUD"}, "log level must be one of TRACE, DEBUG, INFO, got 'LOUD'"),
        ({"logLevel": "WARN"}, "log level WARN would drop the functions' metrics"),
        ({"logLevel": "ERROR"}, "log level ERROR would drop the functions' metrics"),
        ({"tracing": "always"}, "tracing must be one of sampled, active, off, got 'always'"),
        ({"traceSampleRate": 1.5}, "trace sample rate must be between 0 and 1, got 1.5"),
        ({"traceSampleRate": "5%"}, "trace sample rate must be between 0 and 1, got '5%'"),
        ({"sampling": 0.1}, "unknown observability settings: sampling"),
        ("WARN", "must be an object, got 'WARN'"),
    ],
)
def test_a_bad_observability_setting_is_refused_with_the_stage_named(
    observability: Any, error: str
) -> None:
    values = {**stage_values("dev"), "observability": observability}
    with pytest.raises(ValueError, match=f"stage 'dev': observability: .*{error[:30]}"):
        StageConfig.from_dict("dev", values)


def test_a_stage_without_the_setting_gets_the_defaults() -> None:
    config = StageConfig.from_dict("lab", {})
    assert config.observability == Observability("INFO", "sampled", 0.05)
