"""The operating commands with ``--stack``: names resolved from a deployed stack, AWS's calls.

moto's CloudFormation cannot create the whole stack (pipes, Step Functions from a definition
with substitutions, Lambda from bundled assets). It is given the stack's own template with the
resources the commands touch here created (every queue with its redrive policy, the bus, and
the alarms on queues) and every other resource under a condition that is false, so
``get_template`` hands back the whole template, as on AWS, while the physical names come from
``list_stack_resources``. moto has no SQS message move task: its request is checked against
botocore's model of the API instead, with the ARNs the stack resolves to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from click.testing import CliRunner, Result
from moto import mock_aws

from payment_local import operate_cli
from payment_local.assembly import StackAssembly
from payment_local.cli import main
from payment_local.operations.planes import AwsPlane

STACK = "PaymentPosting-dev"
REGION = "us-east-1"
CREATED = {"AWS::SQS::Queue", "AWS::Events::EventBus"}
ALARM = "AWS::CloudWatch::Alarm"
ABSENT = "NotInThisTest"


def _refs(value: Any) -> set[str]:
    """The logical ids ``value`` refers to (Ref, Fn::GetAtt, and ${Name} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            else:
                found |= _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _refs(inner)
    return found


def _created(resource: dict[str, Any]) -> dict[str, Any]:
    """What moto is asked to create: the properties the commands depend on."""
    properties = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::SQS::Queue":
        kept = {k: v for k, v in properties.items() if k == "RedrivePolicy"}
    else:  # the bus
        kept = {"Name": properties["Name"]}
    return {"Type": kind, "Properties": kept}


def moto_template(template: dict[str, Any]) -> dict[str, Any]:
    resources = template["Resources"]
    created = {k for k, v in resources.items() if v["Type"] in CREATED}
    # On AWS a bus's Ref is its name; moto's CloudFormation gives its object's repr instead.
    bus_names = {
        k: resources[k]["Properties"]["Name"]
        for k in created
        if resources[k]["Type"] == "AWS::Events::EventBus"
    }
    outputs = {
        name: {**output, "Value": bus_names[output["Value"]["Ref"]]}
        if isinstance(output["Value"], dict) and output["Value"].get("Ref") in bus_names
        else output
        for name, output in template.get("Outputs", {}).items()
    }
    body: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Conditions": {ABSENT: {"Fn::Equals": ["created", "absent"]}},
        "Resources": {
            name: _created(resource) if name in created else {**resource, "Condition": ABSENT}
            for name, resource in resources.items()
        },
        "Outputs": {name: o for name, o in outputs.items() if _refs(o) <= created},
    }
    return body


@pytest.fixture
def deployed(
    assembly: StackAssembly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The stack "deployed" on moto; its outputs."""
    monkeypatch.chdir(tmp_path)  # the AWS audit log is written under the working directory
    monkeypatch.setattr(operate_cli, "AWS_AUDIT_LOG", tmp_path / "aws-audit.jsonl")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName=STACK, TemplateBody=json.dumps(moto_template(assembly.template))
        )
        stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        _put_alarms(assembly.template)
        yield {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _put_alarms(template: dict[str, Any]) -> None:
    """The stack's alarms, by the names the template gives them (moto's CloudFormation does
    not create alarms); their metrics as far as they are literal."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for resource in template["Resources"].values():
        if resource["Type"] != ALARM:
            continue
        alarm = resource["Properties"]
        cloudwatch.put_metric_alarm(
            AlarmName=alarm["AlarmName"],
            Namespace=alarm.get("Namespace", "PaymentPosting"),
            MetricName=alarm.get("MetricName", "MetricMath"),
            Statistic=alarm.get("Statistic", "Maximum"),
            Period=alarm.get("Period", 60),
            EvaluationPeriods=alarm["EvaluationPeriods"],
            Threshold=alarm["Threshold"],
            ComparisonOperator=alarm["ComparisonOperator"],
        )


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--stack", STACK, "--region", REGION])


def _sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


def _arn(url: str) -> str:
    attributes = _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _fail_posting(outputs: dict[str, str], count: int) -> None:
    for n in range(count):
        _sqs().send_message(
            QueueUrl=outputs["PostingDeadLetterQueueUrl"],
            MessageBody=json.dumps({"transactionId": f"tx-{n}"}),
        )


def test_status_reads_depths_and_alarm_states_from_the_deployed_stack(
    deployed: dict[str, str],
) -> None:
    _fail_posting(deployed, 3)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=deployed["AlarmNamePrefix"])
    posting_dlq_alarm = f"{deployed['AlarmNamePrefix']}Posting-DeadLetterQueue"
    cloudwatch.set_alarm_state(
        AlarmName=posting_dlq_alarm, StateValue="ALARM", StateReason="3 messages"
    )

    result = _invoke("status", "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["where"] == f"stack {STACK} in {REGION}"
    depths = {q["name"]: q["visible"] for q in status["queues"]}
    assert depths["posting"] == 3
    assert sum(depths.values()) == 3  # every other queue of the stack is empty
    states = {a["name"]: a["state"] for a in status["alarms"]}
    assert states[posting_dlq_alarm] == "ALARM"
    assert len(states) == len(alarms["MetricAlarms"]) > 1  # CloudWatch's, by the prefix


def test_a_dry_run_redrive_counts_and_changes_nothing(deployed: dict[str, str]) -> None:
    _fail_posting(deployed, 2)

    result = _invoke("redrive", "posting", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "2" in result.output
    attributes = _sqs().get_queue_attributes(
        QueueUrl=deployed["PostingDeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "2"
    assert not Path("aws-audit.jsonl").exists()


def test_the_posting_redrive_starts_a_message_move_task_back_to_the_posting_queue(
    deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_posting(deployed, 4)
    plane = AwsPlane(STACK, REGION)
    moves: list[dict[str, Any]] = []
    real_call = plane.sqs._make_api_call

    def call(operation: str, params: dict[str, Any]) -> Any:
        if operation != "StartMessageMoveTask":
            return real_call(operation, params)
        # moto has none: the request is checked against botocore's model of the API.
        model = plane.sqs.meta.service_model.operation_model(operation)
        validate_parameters(params, model.input_shape)
        moves.append(params)
        return {"TaskHandle": "task-1"}

    monkeypatch.setattr(plane.sqs, "_make_api_call", call)
    monkeypatch.setattr(operate_cli, "AwsPlane", lambda *_: plane)

    result = _invoke("redrive", "posting")

    assert result.exit_code == 0, result.output
    assert moves == [
        {
            "SourceArn": _arn(deployed["PostingDeadLetterQueueUrl"]),
            "DestinationArn": _arn(deployed["PostingQueueUrl"]),
        }
    ]
    assert "task-1" in result.output
    (record,) = [json.loads(line) for line in Path("aws-audit.jsonl").read_text().splitlines()]
    assert record["action"] == "redrive"
    assert record["where"] == f"stack {STACK} in {REGION}"


def test_an_unknown_stack_is_a_clear_error(deployed: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["status", "--stack", "NoSuchStack", "--region", REGION])

    assert result.exit_code == 1
    assert "cannot read stack NoSuchStack" in result.output
    assert "Traceback" not in result.output


def test_a_refused_audit_event_says_the_redrive_was_done_and_where_its_record_is(
    deployed: dict[str, str],
) -> None:
    _fail_posting(deployed, 1)
    boto3.client("events", region_name=REGION).delete_event_bus(Name=deployed["EventBusName"])

    result = _invoke("redrive", "posting", "--max", "1")

    assert result.exit_code == 1
    assert "the redrive was done, but its audit event was not put on" in result.output
    assert "Traceback" not in result.output
    (record,) = Path("aws-audit.jsonl").read_text().splitlines()
    assert json.loads(record)["action"] == "redrive"


def test_an_aws_refusal_is_a_clear_error(
    deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plane = AwsPlane(STACK, REGION)
    real_call = plane.sqs._make_api_call

    def denied(operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetQueueAttributes":
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, operation
            )
        return real_call(operation, params)

    monkeypatch.setattr(plane.sqs, "_make_api_call", denied)
    monkeypatch.setattr(operate_cli, "AwsPlane", lambda *_: plane)

    result = _invoke("status")

    assert result.exit_code == 1
    assert "AWS refused" in result.output
    assert "AccessDenied" in result.output
    assert "Traceback" not in result.output
