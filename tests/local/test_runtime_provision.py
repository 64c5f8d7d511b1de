"""A hand-written template run end to end by LocalRuntime: provisioning, wiring, outputs."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from payment_local.assembly import StackAssembly
from payment_local.clients import AwsClients
from payment_local.intrinsics import Resolver
from payment_local.provision import Provisioner, UnsupportedResourceError
from payment_local.runtime import LocalRuntime
from tests.local.fixture_handlers import CALLS, POISON
from tests.local.support import ACCOUNT, HANDLERS, PROJECT_ROOT, REGION, drain, queue_depth

CODE_HASH = "c0de" * 16
BUS_NAME = "payments-test"
HANDLER_FILE = Path("tests", "local", "fixture_handlers.py")


def _function(handler: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {
                "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
                "S3Key": f"{CODE_HASH}.zip",
            },
            "Handler": f"{HANDLERS}.{handler}",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Runtime": "python3.11",
            "Timeout": 30,
            "MemorySize": 256,
            "Environment": {"Variables": environment or {}},
        },
        "DependsOn": ["FunctionPolicy", "FunctionRole"],
    }


def _template() -> dict[str, Any]:
    # Listed with dependents first: provisioning must order them itself.
    return {
        "Resources": {
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventBusName": {"Ref": "Bus"},
                    "EventPattern": {"source": ["payments.test"]},
                    "State": "ENABLED",
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Forwarder", "Arn"]}, "Id": "Target0"}],
                },
            },
            "RulePermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Fn::GetAtt": ["Forwarder", "Arn"]},
                    "Principal": "events.amazonaws.com",
                    "SourceArn": {"Fn::GetAtt": ["Rule", "Arn"]},
                },
            },
            "WorkerMapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["Work", "Arn"]},
                    "FunctionName": {"Ref": "Worker"},
                    "BatchSize": 5,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "ForwarderInvokeConfig": {
                "Type": "AWS::Lambda::EventInvokeConfig",
                "Properties": {
                    "FunctionName": {"Ref": "Forwarder"},
                    "Qualifier": "$LATEST",
                    "MaximumRetryAttempts": 1,
                    "DestinationConfig": {
                        "OnFailure": {"Destination": {"Fn::GetAtt": ["DeadLetters", "Arn"]}}
                    },
                },
            },
            "Forwarder": _function("forward_detail", {"FORWARD_QUEUE_URL": {"Ref": "Work"}}),
            "Worker": _function("report_poison"),
            "FunctionPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Action": "sqs:SendMessage",
                                "Effect": "Allow",
                                "Resource": {"Fn::GetAtt": ["Work", "Arn"]},
                            },
                            {  # the Worker's event source mapping polls with this role
                                "Action": [
                                    "sqs:ReceiveMessage",
                                    "sqs:DeleteMessage",
                                    "sqs:GetQueueAttributes",
                                ],
                                "Effect": "Allow",
                                "Resource": {"Fn::GetAtt": ["Work", "Arn"]},
                            },
                            {  # the Forwarder's on-failure destination
                                "Action": "sqs:SendMessage",
                                "Effect": "Allow",
                                "Resource": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                            },
                            {  # ignored resources are not resolved: no Fn::If error
                                "Action": "dynamodb:GetItem",
                                "Effect": "Allow",
                                "Resource": {"Fn::If": ["HasTable", "arn:x", "arn:y"]},
                            },
                        ]
                    },
                    "PolicyName": "FunctionPolicy",
                    "Roles": [{"Ref": "FunctionRole"}],
                },
            },
            "FunctionRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Statement": [
                            {
                                "Action": "sts:AssumeRole",
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                            }
                        ]
                    }
                },
            },
            "WorkerLogs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"RetentionInDays": 7},
            },
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": BUS_NAME}},
            "Work": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 30,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                        "maxReceiveCount": 3,
                    },
                },
            },
            "DeadLetters": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 1209600},
            },
        },
        "Outputs": {
            "WorkQueueUrl": {"Value": {"Ref": "Work"}},
            "BusArn": {"Value": {"Fn::GetAtt": ["Bus", "Arn"]}},
            "WorkerArn": {
                "Value": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":lambda:",
                            {"Ref": "AWS::Region"},
                            ":",
                            {"Ref": "AWS::AccountId"},
                            ":function:",
                            {"Ref": "Worker"},
                        ],
                    ]
                }
            },
        },
    }


@pytest.fixture
def staged_code(tmp_path: Path) -> Path:
    """The function asset: a copy of the fixture handlers at their module path."""
    asset = tmp_path / f"asset.{CODE_HASH}"
    (asset / HANDLER_FILE).parent.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / HANDLER_FILE, asset / HANDLER_FILE)
    return asset


def _assembly(tmp_path: Path, staged_code: Path, template: dict[str, Any]) -> StackAssembly:
    return StackAssembly(
        directory=tmp_path, stack_name="T", template=template, assets={CODE_HASH: staged_code}
    )


@pytest.fixture
def runtime(tmp_path: Path, staged_code: Path) -> Iterator[LocalRuntime]:
    with LocalRuntime(_assembly(tmp_path, staged_code, _template())) as running:
        yield running


def _put(runtime: LocalRuntime, detail: dict[str, Any]) -> None:
    response = runtime.clients.events.put_events(
        Entries=[
            {
                "EventBusName": BUS_NAME,
                "Source": "payments.test",
                "DetailType": "Test",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def _worker_details(name: str = "report_poison") -> list[dict[str, Any]]:
    return [
        json.loads(record["body"])["detail"] for event in CALLS[name] for record in event["Records"]
    ]


def test_provisioning_records_what_it_made(runtime: LocalRuntime) -> None:
    topology = runtime.topology
    assert set(topology.functions) == {"Forwarder", "Worker"}
    assert topology.buses == {"Bus": BUS_NAME}
    assert set(topology.queues) == {"Work", "DeadLetters"}
    assert topology.unsupported == {}
    policies = "policies: read by the local access check, not created in moto"
    assert topology.ignored == {
        "FunctionRole": policies,
        "FunctionPolicy": policies,
        "RulePermission": policies,
        "WorkerLogs": "function output goes to the local function log",
    }
    # The statement it cannot resolve is named, and the rest of the policy still applies.
    assert any("FunctionPolicy" in note and "Fn::If" in note for note in runtime.access.model.notes)
    assert runtime.access.denials() == []

    forwarder = topology.functions["Forwarder"]
    assert forwarder.name == "T-Forwarder"
    assert forwarder.code_path == runtime.assembly.assets[CODE_HASH]
    assert forwarder.environment == {"FORWARD_QUEUE_URL": topology.queues["Work"]}
    assert (forwarder.timeout_seconds, forwarder.memory_mb) == (30, 256)

    (mapping,) = topology.event_sources
    assert mapping.function is topology.functions["Worker"]
    assert mapping.batch_size == 5
    assert mapping.report_batch_item_failures is True
    assert mapping.queue_url == topology.queues["Work"]

    (tap,) = topology.tap_targets
    assert tap.target_id == "Target0"

    redrive = json.loads(
        runtime.clients.sqs.get_queue_attributes(
            QueueUrl=topology.queues["Work"], AttributeNames=["RedrivePolicy"]
        )["Attributes"]["RedrivePolicy"]
    )
    assert redrive["deadLetterTargetArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:T-DeadLetters"
    assert int(redrive["maxReceiveCount"]) == 3


def test_an_event_flows_through_rule_function_queue_and_mapping(runtime: LocalRuntime) -> None:
    _put(runtime, {"transactionId": "t-1"})

    steps = runtime.run_until_idle()

    assert 1 < steps < 20
    assert [event["detail"] for event in CALLS["forward_detail"]] == [{"transactionId": "t-1"}]
    assert _worker_details() == [{"transactionId": "t-1"}]
    assert queue_depth(runtime.clients, runtime.topology.queues["Work"]) == (0, 0)
    assert queue_depth(runtime.clients, runtime.topology.queues["DeadLetters"]) == (0, 0)
    logged = [(e.bus, e.source, e.transaction_id) for e in runtime.event_log.events]
    assert logged == [(BUS_NAME, "payments.test", "t-1")]
    assert runtime.step().total == 0


def test_a_reported_item_failure_ends_in_the_queue_dlq(runtime: LocalRuntime) -> None:
    _put(runtime, {"transactionId": "t-ok"})
    _put(runtime, {"transactionId": POISON})

    runtime.run_until_idle()

    details = _worker_details()
    assert details.count({"transactionId": POISON}) == 3  # maxReceiveCount receives
    assert details.count({"transactionId": "t-ok"}) == 1
    (dead,) = drain(runtime.clients, runtime.topology.queues["DeadLetters"])
    assert json.loads(dead["Body"])["detail"] == {"transactionId": POISON}
    assert queue_depth(runtime.clients, runtime.topology.queues["Work"]) == (0, 0)


def test_a_failing_function_target_uses_its_invoke_config(runtime: LocalRuntime) -> None:
    _put(runtime, {"transactionId": "t-2", "fail": True})

    runtime.run_until_idle()

    assert len(CALLS["forward_detail"]) == 2  # MaximumRetryAttempts: 1
    assert CALLS["report_poison"] == []
    (dead,) = drain(runtime.clients, runtime.topology.queues["DeadLetters"])
    record = json.loads(dead["Body"])
    assert record["requestPayload"]["detail"] == {"transactionId": "t-2", "fail": True}
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_a_permission_the_template_lacks_is_refused_and_the_message_kept(
    tmp_path: Path, staged_code: Path
) -> None:
    template = _template()
    statements = template["Resources"]["FunctionPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    statements[:] = [s for s in statements if "sqs:ReceiveMessage" not in s["Action"]]
    with LocalRuntime(_assembly(tmp_path, staged_code, template)) as runtime:
        _put(runtime, {"transactionId": "t-3"})
        runtime.run_until_idle()

        assert len(CALLS["forward_detail"]) == 1  # the forwarder may still send
        assert CALLS["report_poison"] == []  # the worker's mapping may not receive
        refused = {(d.principal, d.action) for d in runtime.access.denials()}
        assert ("role FunctionRole", "sqs:ReceiveMessage") in refused
        # Nothing is lost: the message waits in the queue for a fixed role.
        assert queue_depth(runtime.clients, runtime.topology.queues["Work"]) == (1, 0)


def test_outputs_resolve_against_the_local_resources(runtime: LocalRuntime) -> None:
    assert runtime.output("WorkQueueUrl") == runtime.topology.queues["Work"]
    assert runtime.output("WorkQueueUrl").endswith(f"/{ACCOUNT}/T-Work")
    assert runtime.output("BusArn") == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS_NAME}"
    assert runtime.output("WorkerArn") == runtime.topology.functions["Worker"].arn
    with pytest.raises(KeyError, match=r"no output 'Nope'.*WorkQueueUrl"):
        runtime.output("Nope")


def test_the_runtime_leaves_the_environment_as_it_found_it(
    tmp_path: Path, staged_code: Path
) -> None:
    before = dict(os.environ)
    with LocalRuntime(_assembly(tmp_path, staged_code, _template())) as running:
        assert os.environ["MOTO_ACCOUNT_ID"] == ACCOUNT
        assert os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
        _put(running, {"transactionId": "t-3"})
        running.run_until_idle()
    assert dict(os.environ) == before


def _with_instance() -> dict[str, Any]:
    template = _template()
    template["Resources"]["Server"] = {
        "Type": "AWS::EC2::Instance",
        "Properties": {"ImageId": "ami-12345678"},
    }
    return template


def test_an_unsupported_resource_is_named_before_anything_is_created(
    tmp_path: Path, staged_code: Path
) -> None:
    with mock_aws():
        clients = AwsClients(REGION)
        provisioner = Provisioner(
            _assembly(tmp_path, staged_code, _with_instance()), clients, Resolver()
        )
        with pytest.raises(UnsupportedResourceError, match=r"Server \(AWS::EC2::Instance\)"):
            provisioner.provision()
        assert clients.sqs.list_queues().get("QueueUrls", []) == []
        assert [b["Name"] for b in clients.events.list_event_buses()["EventBuses"]] == ["default"]


def test_the_runtime_refuses_an_unsupported_resource(tmp_path: Path, staged_code: Path) -> None:
    runtime = LocalRuntime(_assembly(tmp_path, staged_code, _with_instance()))
    try:
        with (
            pytest.raises(UnsupportedResourceError, match=r"Server \(AWS::EC2::Instance\)"),
            runtime,
        ):
            pass
    finally:
        runtime.__exit__(None, None, None)  # undo what a failed __enter__ may have left


def test_a_refused_template_leaves_the_environment_as_it_found_it(
    tmp_path: Path, staged_code: Path
) -> None:
    before = dict(os.environ)
    runtime = LocalRuntime(_assembly(tmp_path, staged_code, _with_instance()))
    try:
        with pytest.raises(UnsupportedResourceError), runtime:
            pass
        after = dict(os.environ)
    finally:
        runtime.__exit__(None, None, None)  # clean up for the next tests either way
    assert after == before


def test_a_staged_copy_that_differs_is_refused(tmp_path: Path, staged_code: Path) -> None:
    (staged_code / HANDLER_FILE).write_text("# a different synth\n")
    with LocalRuntime(_assembly(tmp_path, staged_code, _template())) as running:
        forwarder = running.topology.functions["Forwarder"]
        with pytest.raises(Exception, match=r"not the synthesized.*make synth"):
            forwarder.invoke({"detail": {}})
    assert CALLS["forward_detail"] == []


def test_alarms_and_dashboards_are_listed_as_not_run_locally(
    tmp_path: Path, staged_code: Path
) -> None:
    template = _template()
    template["Resources"]["DlqAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1},
    }
    template["Resources"]["Board"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardBody": "{}"},
    }
    with mock_aws():
        provisioner = Provisioner(
            _assembly(tmp_path, staged_code, template), AwsClients(REGION), Resolver()
        )
        topology = provisioner.survey()
    assert topology.unsupported == {}
    assert topology.ignored["DlqAlarm"] == "CloudWatch alarms and dashboards"
    assert topology.ignored["Board"] == "CloudWatch alarms and dashboards"
