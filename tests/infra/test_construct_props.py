"""Props Python's types do not enforce: a clear error for a wrong type, a warning for a
second poster on the same approvals (issue 10, item 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match, Template

from payment_stack import (
    BufferedPoster,
    EnrichmentProcessor,
    IngestPipe,
    RulesEngine,
    ScreeningOutcomes,
    StartingPosition,
)
from payment_stack.rules_engine import DEFAULT_DEFINITION
from tests.infra.support import bare_stack

SECOND_POSTER = "payment-posting:second-poster"


def _bus_and_key(stack: cdk.Stack) -> tuple[events.EventBus, kms.Key]:
    return events.EventBus(stack, "Bus"), kms.Key(stack, "Key", enable_key_rotation=True)


@pytest.mark.parametrize(
    ("prop", "value"),
    [("batch_size", "10"), ("batch_size", 5.0), ("parallelization_factor", True),
     ("maximum_retry_attempts", "3")],
)  # fmt: skip
def test_ingest_pipe_refuses_a_number_of_the_wrong_type_by_name(prop: str, value: Any) -> None:
    with pytest.raises(TypeError, match=rf"IngestPipe: {prop} must be a whole number \(int\)"):
        IngestPipe(bare_stack(), "Ingest", **{prop: value})


@pytest.mark.parametrize(
    ("prop", "value"),
    [("high_value_threshold", 1000.5), ("high_value_threshold", "1000"),
     ("max_fx_deviation_bps", 2.5)],
)  # fmt: skip
def test_rules_engine_refuses_amounts_that_are_not_whole_numbers(prop: str, value: Any) -> None:
    stack = bare_stack()
    bus, _ = _bus_and_key(stack)
    with pytest.raises(TypeError, match=rf"RulesEngine: {prop} must be a whole number"):
        RulesEngine(stack, "Rules", event_bus=bus, **{prop: value})


def test_rules_engine_takes_its_definition_as_a_string_path() -> None:
    stack = bare_stack()
    bus, _ = _bus_and_key(stack)
    RulesEngine(stack, "Rules", event_bus=bus, definition_file=str(DEFAULT_DEFINITION))


def test_rules_engine_refuses_a_definition_that_is_not_a_path() -> None:
    stack = bare_stack()
    bus, _ = _bus_and_key(stack)
    with pytest.raises(TypeError, match="definition_file must be a path"):
        RulesEngine(stack, "Rules", event_bus=bus, definition_file=Path("x").read_text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("prop", "value"), [("batch_size", "10"), ("max_concurrency", 10.0)])
def test_buffered_poster_refuses_a_number_of_the_wrong_type(prop: str, value: Any) -> None:
    stack = bare_stack()
    bus, key = _bus_and_key(stack)
    with pytest.raises(TypeError, match=rf"BufferedPoster: {prop} must be a whole number"):
        BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key, **{prop: value})


def _second_poster_warnings(stack: cdk.Stack) -> list[Any]:
    found: list[Any] = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp(f"{SECOND_POSTER}|already takes the approvals")
    )
    return found


def test_a_second_poster_on_the_same_approvals_is_warned_about() -> None:
    stack = bare_stack()
    bus, key = _bus_and_key(stack)
    BufferedPoster(stack, "First", event_bus=bus, encryption_key=key)
    BufferedPoster(stack, "Second", event_bus=bus, encryption_key=key)

    [warning] = _second_poster_warnings(stack)
    assert warning.id == "/Bare/Second"
    assert "/First" in str(warning.entry.data)


def test_posters_of_different_approvals_or_buses_are_not_warned_about() -> None:
    stack = bare_stack()
    bus, key = _bus_and_key(stack)
    other_bus = events.EventBus(stack, "OtherBus")
    BufferedPoster(stack, "First", event_bus=bus, encryption_key=key)
    BufferedPoster(
        stack, "Manual", event_bus=bus, encryption_key=key, approved_source="payments.manual"
    )
    BufferedPoster(stack, "Elsewhere", event_bus=other_bus, encryption_key=key)

    assert _second_poster_warnings(stack) == []


def _metrics(construct: Any) -> dict[str, Any]:
    return {
        name: getattr(construct, name)
        for name in dir(construct)
        if name.startswith("metric_") and callable(getattr(construct, name))
    }


def test_every_metric_takes_cloudwatch_options_over_its_defaults() -> None:
    stack = bare_stack()
    bus, key = _bus_and_key(stack)
    ingest = IngestPipe(stack, "Ingest", event_bus=bus, encryption_key=key)
    rules = RulesEngine(stack, "Rules", event_bus=bus, encryption_key=key)
    poster = BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key)
    enrichment = EnrichmentProcessor(stack, "Enrichment", event_bus=bus, encryption_key=key)
    outcomes = ScreeningOutcomes(stack, "Outcomes", event_bus=bus, encryption_key=key)
    found = 0
    for construct in (ingest, rules, poster, enrichment, outcomes):
        metrics = _metrics(construct)
        assert metrics, f"{construct.node.id} has nothing to watch"
        for name, method in metrics.items():
            default = method()
            assert default.period.to_minutes() == 1, name
            tuned = method(period=cdk.Duration.minutes(5), statistic="Average", label="mine")
            assert (tuned.period.to_minutes(), tuned.statistic, tuned.label) == (
                5,
                "Average",
                "mine",
            )
            assert (tuned.namespace, tuned.metric_name) == (default.namespace, default.metric_name)
            found += 1
    assert found >= 12


@pytest.mark.parametrize("position", [StartingPosition.LATEST, "LATEST"])
def test_the_starting_position_is_a_typed_choice_and_its_name(position: Any) -> None:
    stack = bare_stack()
    IngestPipe(stack, "Ingest", starting_position=position)
    pipe = Template.from_stack(stack).find_resources("AWS::Pipes::Pipe")
    [properties] = [p["Properties"] for p in pipe.values()]
    parameters = properties["SourceParameters"]["DynamoDBStreamParameters"]
    assert parameters["StartingPosition"] == "LATEST"


def test_constructs_create_a_key_when_none_is_given() -> None:
    stack = bare_stack()
    bus = events.EventBus(stack, "Bus")
    enrichment = EnrichmentProcessor(stack, "Enrichment", event_bus=bus)
    outcomes = ScreeningOutcomes(stack, "Outcomes", event_bus=bus)
    poster = BufferedPoster(stack, "Posting", event_bus=bus)
    template = Template.from_stack(stack)
    keys = template.find_resources("AWS::KMS::Key")
    assert len(keys) == 3
    assert all(key["Properties"]["EnableKeyRotation"] for key in keys.values())
    assert len({id(c.encryption_key) for c in (enrichment, outcomes, poster)}) == 3
