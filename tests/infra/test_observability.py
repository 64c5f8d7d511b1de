"""Alarms, the operations topic, dashboards and the operations outputs, read from the template.

What must be watched is found in the template itself (every queue something dead-letters
into, every function, the pipe, the workflow), not from a list kept beside the code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from payment_posting_functions.domain.posting import PostingOutcome
from payment_stack import PaymentPostingStack, StageConfig
from payment_stack.alarms import AlarmThreshold
from payment_stack.buffered_poster import POSTING_OUTCOMES, BufferedPoster
from payment_stack.ingest_pipe import IngestPipe
from payment_stack.rules_engine import RulesEngine
from tests.infra.support import Synthesized, bare_stack, logical_id, make_app, stage_values

Resources = Mapping[str, Mapping[str, Any]]


def of_type(resources: Resources, kind: str) -> dict[str, Mapping[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == kind}


def alarms(resources: Resources) -> list[Mapping[str, Any]]:
    return [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]


def logical_ids_in(value: Any) -> Iterator[str]:
    """Every logical id ``value`` refers to (Ref or Fn::GetAtt), at any depth."""
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            yield value["Fn::GetAtt"][0]
        for item in value.values():
            yield from logical_ids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from logical_ids_in(item)


def dead_letter_targets(resources: Resources) -> set[str]:
    """Every queue some resource sends what failed to: a queue's redrive policy, a pipe's or a
    bus's dead-letter config, a rule target's, a function's on-failure destination."""
    queues = set(of_type(resources, "AWS::SQS::Queue"))
    targets: set[str] = set()
    for resource in resources.values():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        found: list[Any] = []
        if kind == "AWS::SQS::Queue":
            found.append(properties.get("RedrivePolicy", {}).get("deadLetterTargetArn"))
        elif kind == "AWS::Pipes::Pipe":
            source = properties["SourceParameters"]["DynamoDBStreamParameters"]
            found.append(source.get("DeadLetterConfig"))
        elif kind == "AWS::Events::EventBus":
            found.append(properties.get("DeadLetterConfig"))
        elif kind == "AWS::Events::Rule":
            found += [target.get("DeadLetterConfig") for target in properties.get("Targets", [])]
        elif kind == "AWS::Lambda::EventInvokeConfig":
            found.append(properties.get("DestinationConfig", {}).get("OnFailure"))
        targets |= {lid for lid in logical_ids_in(found) if lid in queues}
    return targets


def queue_of_alarm(alarm: Mapping[str, Any]) -> str | None:
    for dimension in alarm.get("Dimensions", []):
        if dimension["Name"] == "QueueName":
            [queue] = logical_ids_in(dimension["Value"])
            return queue
    return None


def dimension_refs(alarm: Mapping[str, Any], name: str) -> set[str]:
    return {
        lid
        for dimension in alarm.get("Dimensions", [])
        if dimension["Name"] == name
        for lid in logical_ids_in(dimension["Value"])
    }


@pytest.fixture(scope="module", params=["dev", "prod"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    fixture: Synthesized = request.getfixturevalue(request.param)
    return fixture


@pytest.fixture(scope="module")
def outputs(synthesized: Synthesized) -> Mapping[str, Mapping[str, Any]]:
    found: Mapping[str, Mapping[str, Any]] = synthesized.template.to_json()["Outputs"]
    return found


def test_the_stack_has_seven_dead_letter_queues_with_the_ledger(dev: Synthesized) -> None:
    # The brief's count, to notice when the derivation below finds fewer than exist.
    assert len(dead_letter_targets(dev.resources)) == 7


def test_every_dead_letter_queue_alarms_on_any_message(synthesized: Synthesized) -> None:
    watched = {
        queue_of_alarm(alarm): alarm
        for alarm in alarms(synthesized.resources)
        if alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    for queue in dead_letter_targets(synthesized.resources):
        assert queue in watched, f"no alarm on dead-letter queue {queue}"
        alarm = watched[queue]
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["Statistic"] == "Maximum"
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Period"] == 60


def test_every_dead_letter_queue_is_an_output_saying_what_lands_there(
    synthesized: Synthesized, outputs: Mapping[str, Mapping[str, Any]]
) -> None:
    by_queue = {
        next(logical_ids_in(output["Value"])): (name, output)
        for name, output in outputs.items()
        if name.endswith("DeadLetterQueueUrl")
    }
    for queue in dead_letter_targets(synthesized.resources):
        assert queue in by_queue, f"dead-letter queue {queue} is not a stack output"
        name, output = by_queue[queue]
        assert output["Value"] == {"Ref": queue}
        assert len(output["Description"].split()) >= 6, name
    assert set(by_queue) == dead_letter_targets(synthesized.resources)
    assert "IngestDeadLetterQueueUrl" in outputs  # the name it always had


def test_the_dead_letter_outputs_are_named_as_the_redrive_command_names_them(
    dev: Synthesized,
) -> None:
    names = {
        name.removesuffix("DeadLetterQueueUrl")
        for name in dev.template.to_json()["Outputs"]
        if name.endswith("DeadLetterQueueUrl")
    }
    assert names == {
        "Ingest",
        "IngestBus",
        "Enrichment",
        "ScreeningOutcomes",
        "RulesEngine",
        "Posting",
        "PostingExpirySweeper",
    }


def test_every_function_alarms_on_errors_and_throttles(synthesized: Synthesized) -> None:
    resources = synthesized.resources
    functions = set(of_type(resources, "AWS::Lambda::Function"))
    assert functions
    for metric in ("Errors", "Throttles"):
        watched = {
            lid
            for alarm in alarms(resources)
            if alarm["Namespace"] == "AWS/Lambda" and alarm["MetricName"] == metric
            for lid in dimension_refs(alarm, "FunctionName")
        }
        assert watched == functions, metric


def test_the_workflow_alarms_on_failed_timed_out_and_throttled_executions(
    synthesized: Synthesized,
) -> None:
    [machine] = of_type(synthesized.resources, "AWS::StepFunctions::StateMachine")
    watched = {
        alarm["MetricName"]
        for alarm in alarms(synthesized.resources)
        if alarm["Namespace"] == "AWS/States"
        and machine in dimension_refs(alarm, "StateMachineArn")
    }
    assert watched == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"}


def test_the_pipe_alarms_on_failed_executions_and_stages(synthesized: Synthesized) -> None:
    [pipe] = of_type(synthesized.resources, "AWS::Pipes::Pipe")
    watched = {
        alarm["MetricName"]
        for alarm in alarms(synthesized.resources)
        if alarm["Namespace"] == "AWS/EventBridge/Pipes"
        and pipe in dimension_refs(alarm, "PipeName")
    }
    assert watched == {"ExecutionFailed", "EnrichmentStageFailed", "TargetStageFailed"}


def service_of(resources: Resources, handler_module: str) -> str:
    """The Powertools service (metric dimension) of the function running ``handler_module``."""
    for resource in of_type(resources, "AWS::Lambda::Function").values():
        properties = resource["Properties"]
        if properties["Handler"].startswith(f"payment_posting_functions.handlers.{handler_module}"):
            service: str = properties["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            return service
    raise AssertionError(f"no function runs handlers.{handler_module}")


def custom_metric_alarm(resources: Resources, metric_name: str) -> Mapping[str, Any]:
    [alarm] = [
        a
        for a in alarms(resources)
        if a["Namespace"] == "PaymentPosting" and a["MetricName"] == metric_name
    ]
    return alarm


def test_posting_failures_alarm_on_the_failure_outcome_of_the_posting_function(
    synthesized: Synthesized,
) -> None:
    alarm = custom_metric_alarm(synthesized.resources, "PostingsFailed")
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": service_of(synthesized.resources, "posting")}
    ]
    assert alarm["Statistic"] == "Sum"


def test_ingest_lag_alarms_on_the_dedup_functions_metric(synthesized: Synthesized) -> None:
    alarm = custom_metric_alarm(synthesized.resources, "IngestLag")
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": service_of(synthesized.resources, "dedup")}
    ]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 300  # seconds, as the handler emits it


def test_the_posting_queue_alarms_on_its_oldest_message(synthesized: Synthesized) -> None:
    [buffer] = [
        lid
        for lid, queue in of_type(synthesized.resources, "AWS::SQS::Queue").items()
        if "RedrivePolicy" in queue["Properties"]
    ]
    [alarm] = [
        a
        for a in alarms(synthesized.resources)
        if a["MetricName"] == "ApproximateAgeOfOldestMessage"
    ]
    assert queue_of_alarm(alarm) == buffer
    assert alarm["Threshold"] == 300
    assert alarm["EvaluationPeriods"] == 3


def operations_topic(resources: Resources, outputs: Mapping[str, Mapping[str, Any]]) -> str:
    [topic] = logical_ids_in(outputs["OperationsTopicArn"]["Value"])
    return topic


def test_every_alarm_notifies_the_operations_topic_of_trouble_and_of_recovery(
    synthesized: Synthesized, outputs: Mapping[str, Mapping[str, Any]]
) -> None:
    topic = operations_topic(synthesized.resources, outputs)
    found = alarms(synthesized.resources)
    assert len(found) >= 20
    for alarm in found:
        assert alarm["AlarmActions"] == [{"Ref": topic}], alarm["AlarmName"]
        assert alarm["OKActions"] == [{"Ref": topic}], alarm["AlarmName"]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_every_alarm_is_named_with_the_stacks_prefix(
    synthesized: Synthesized, outputs: Mapping[str, Mapping[str, Any]]
) -> None:
    prefix = outputs["AlarmNamePrefix"]["Value"]
    assert prefix == f"{synthesized.stack.stack_name}-"
    names = [alarm["AlarmName"] for alarm in alarms(synthesized.resources)]
    assert all(name.startswith(prefix) for name in names)
    assert len(set(names)) == len(names)


def test_the_operations_topic_is_encrypted_tls_only_and_open_to_this_stacks_alarms(
    synthesized: Synthesized, outputs: Mapping[str, Mapping[str, Any]]
) -> None:
    resources = synthesized.resources
    topic = operations_topic(resources, outputs)
    [key] = logical_ids_in(resources[topic]["Properties"]["KmsMasterKeyId"])
    assert resources[key]["Type"] == "AWS::KMS::Key"  # customer managed, in this stack
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in of_type(resources, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic} in p["Properties"]["Topics"]
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy
    )
    prefix = outputs["AlarmNamePrefix"]["Value"]
    for statements in (policy, resources[key]["Properties"]["KeyPolicy"]["Statement"]):
        [alarms_may] = [
            s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        ]
        source = json.dumps(alarms_may["Condition"]["ArnLike"]["aws:SourceArn"])
        assert f":alarm:{prefix}*" in source
        assert "aws:SourceAccount" in alarms_may["Condition"]["StringEquals"]


def test_the_archive_is_an_output(
    synthesized: Synthesized, outputs: Mapping[str, Mapping[str, Any]]
) -> None:
    [archive] = of_type(synthesized.resources, "AWS::Events::Archive")
    assert outputs["EventArchiveName"]["Value"] == {"Ref": archive}


def dashboard_bodies(resources: Resources) -> dict[str, str]:
    return {
        r["Properties"]["DashboardName"]: json.dumps(r["Properties"]["DashboardBody"])
        for r in of_type(resources, "AWS::CloudWatch::Dashboard").values()
    }


def test_one_dashboard_shows_the_stages_in_flow_order_and_every_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    bodies = dashboard_bodies(synthesized.resources)
    stack = synthesized.stack.stack_name
    assert set(bodies) == {stack}
    body = bodies[stack]
    for queue in dead_letter_targets(synthesized.resources):
        assert f'"{queue}", "QueueName"' in body, f"the dashboard does not show {queue}"
    headings = [body.index(f"# {stage}") for stage in ("Ingest", "Rules", "Posting")]
    assert headings == sorted(headings), "the stages are not in the order a transaction flows"
    # The processors close the ingest section, before the rules.
    assert headings[0] < body.index("Enrichment and screening outcomes") < headings[1]
    assert headings[0] < body.index("IngestLag") < headings[1]
    assert headings[2] < body.index("End-to-end latency (ms, authorization to outcome)")


def test_a_construct_on_its_own_makes_a_dashboard_of_its_own() -> None:
    stack = bare_stack()
    RulesEngine(stack, "RulesEngine", event_bus=events.EventBus(stack, "Bus"))
    bodies = dashboard_bodies(Template.from_stack(stack).to_json()["Resources"])
    assert list(bodies) == [f"{stack.stack_name}-RulesEngine"]
    assert "# Rules" in bodies[f"{stack.stack_name}-RulesEngine"]


def test_the_dashboards_outcome_metrics_are_the_ones_the_posting_function_emits() -> None:
    assert tuple(outcome.value.title() for outcome in PostingOutcome) == POSTING_OUTCOMES


# Turning alarms off or tuning them, construct by construct.


def bus_stack() -> tuple[Any, events.EventBus]:
    stack = bare_stack()
    return stack, events.EventBus(stack, "Bus")


def alarm_names(template: Template) -> list[str]:
    return [alarm["AlarmName"] for alarm in alarms(template.to_json()["Resources"])]


def test_an_ingest_pipe_without_alarms_has_none_and_no_topic() -> None:
    stack = bare_stack()
    IngestPipe(stack, "Ingest", alarms=False)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    template.resource_count_is("AWS::SNS::Topic", 0)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_an_ingest_pipe_alone_alarms_to_a_topic_of_its_own() -> None:
    stack = bare_stack()
    pipe = IngestPipe(stack, "Ingest", dashboard=False)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 0)
    assert pipe.alarm_topic is not None
    assert sorted(alarm_names(template)) == sorted(
        f"Bare-Ingest-{name}"
        for name in (
            "Pipe-DeadLetterQueue",
            "Bus-DeadLetterQueue",
            "Pipe-ExecutionFailed",
            "Pipe-EnrichmentStageFailed",
            "Pipe-TargetStageFailed",
            "IngestLag",
            "Dedup-Errors",
            "Dedup-Throttles",
        )
    )


def test_one_kind_of_alarm_turned_off_and_another_tuned() -> None:
    stack, bus = bus_stack()
    BufferedPoster(
        stack,
        "Posting",
        event_bus=bus,
        alarms={
            "posting_failures": None,
            "oldest_message_age": AlarmThreshold(900, evaluation_periods=5, datapoints_to_alarm=4),
        },
    )
    resources = Template.from_stack(stack).to_json()["Resources"]
    assert not [a for a in alarms(resources) if a["MetricName"] == "PostingsFailed"]
    [age] = [a for a in alarms(resources) if a["MetricName"] == "ApproximateAgeOfOldestMessage"]
    assert (age["Threshold"], age["EvaluationPeriods"], age["DatapointsToAlarm"]) == (900, 5, 4)
    assert [a for a in alarms(resources) if a["MetricName"] == "Errors"]  # the rest stay


def test_a_tuned_period_reaches_the_alarm() -> None:
    stack, bus = bus_stack()
    RulesEngine(
        stack,
        "Rules",
        event_bus=bus,
        alarms={"failed_executions": AlarmThreshold(3, period=Duration.minutes(15))},
    )
    resources = Template.from_stack(stack).to_json()["Resources"]
    [failed] = [a for a in alarms(resources) if a["MetricName"] == "ExecutionsFailed"]
    assert (failed["Threshold"], failed["Period"]) == (3, 900)


def test_alarms_go_to_the_topic_given() -> None:
    stack, bus = bus_stack()
    topic = sns.Topic(stack, "Mine")
    RulesEngine(stack, "Rules", event_bus=bus, alarm_topic=topic)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Topic", 2)  # mine and the failure topic: no third
    found = alarms(template.to_json()["Resources"])
    assert found
    for alarm in found:
        assert alarm["AlarmActions"] == [{"Ref": logical_id(topic)}]


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ({"dead_letter_queues": None}, "no alarm kind 'dead_letter_queues'"),
        ({"dead_letter_queue": 5}, "must be an AlarmThreshold or None"),
        ("yes", "alarms must be True, False or a mapping"),
    ],
)
def test_an_unknown_or_malformed_alarm_setting_is_refused_clearly(setting: Any, error: str) -> None:
    stack, bus = bus_stack()
    with pytest.raises((ValueError, TypeError), match=error):
        RulesEngine(stack, "Rules", event_bus=bus, alarms=setting)


def test_a_threshold_outside_what_cloudwatch_takes_is_refused() -> None:
    with pytest.raises(ValueError, match="datapoints_to_alarm"):
        AlarmThreshold(1, evaluation_periods=2, datapoints_to_alarm=3)
    with pytest.raises(ValueError, match="period"):
        AlarmThreshold(1, period=Duration.seconds(45))


def test_the_stack_without_alarms_has_no_alarm_no_topic_and_no_topic_output() -> None:
    config = StageConfig.from_dict("dev", stage_values("dev"))
    stack = PaymentPostingStack(make_app(), "PaymentPosting-dev", config=config, alarms=False)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    outputs = template.to_json()["Outputs"]
    assert "OperationsTopicArn" not in outputs
    topics = of_type(template.to_json()["Resources"], "AWS::SNS::Topic")
    assert not [lid for lid in topics if lid.startswith("OperationsTopic")]
    assert "IngestDeadLetterQueueUrl" in outputs  # the queues are still outputs
