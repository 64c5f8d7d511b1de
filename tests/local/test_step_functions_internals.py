"""Step Functions on moto, as the runtime patches it: inline executions, parse reuse, and
``lambda:invoke`` tasks that run handlers in process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from payment_local import moto_internals
from payment_local.clients import AwsClients
from payment_local.moto_internals import InvocationError
from tests.local.support import ACCOUNT, REGION

FUNCTION = "double"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
DEFINITION = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": FUNCTION_ARN, "Payload.$": "$"},
            "ResultSelector": {"value.$": "$.Payload.value"},
            "Next": "Big?",
        },
        "Big?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.value", "NumericGreaterThan": 10, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": {"size": "big"}, "End": True},
        "Small": {"Type": "Pass", "Result": {"size": "small"}, "End": True},
    },
}


def double(payload: Any) -> Any:
    if payload.get("fail"):
        raise InvocationError("ValueError", "asked to fail")
    return {"value": payload["value"] * 2}


@pytest.fixture
def stepfunctions() -> Iterator[AwsClients]:
    moto_internals.apply_patches()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                          "lambda": {"use_docker": False}}):  # fmt: skip
        moto_internals.register_function(ACCOUNT, REGION, [FUNCTION, FUNCTION_ARN], double)
        yield AwsClients(REGION)
    moto_internals.clear_functions()


def _machine(clients: AwsClients, kind: str = "EXPRESS") -> str:
    arn: str = clients.stepfunctions.create_state_machine(
        name=f"m-{kind}",
        definition=json.dumps(DEFINITION),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
        type=kind,
    )["stateMachineArn"]
    return arn


def _run(clients: AwsClients, machine: str, payload: dict[str, Any], name: str) -> dict[str, Any]:
    execution = clients.stepfunctions.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps(payload)
    )
    # No waiting: the patched execution has finished when StartExecution returns.
    described: dict[str, Any] = clients.stepfunctions.describe_execution(
        executionArn=execution["executionArn"]
    )
    return described


@pytest.mark.parametrize("kind", ["EXPRESS", "STANDARD"])
def test_an_execution_finishes_inside_start_execution_without_a_thread(
    stepfunctions: AwsClients, kind: str
) -> None:
    machine = _machine(stepfunctions, kind)
    threads = threading.active_count()
    described = _run(stepfunctions, machine, {"value": 3}, "one")
    assert described["status"] == "SUCCEEDED"
    assert threading.active_count() == threads


def test_the_reused_parse_tree_still_takes_each_executions_own_branch(
    stepfunctions: AwsClients,
) -> None:
    machine = _machine(stepfunctions)
    outputs = [
        json.loads(_run(stepfunctions, machine, {"value": v}, f"run-{v}")["output"])["size"]
        for v in (1, 20, 2, 30)
    ]
    assert outputs == ["small", "big", "small", "big"]


def test_a_lambda_task_runs_the_registered_handler_and_reports_its_error(
    stepfunctions: AwsClients,
) -> None:
    machine = _machine(stepfunctions)
    failed = _run(stepfunctions, machine, {"value": 1, "fail": True}, "failing")
    assert failed["status"] == "FAILED"
    assert failed.get("error") == "ValueError"


def test_an_unregistered_function_keeps_motos_echo(stepfunctions: AwsClients) -> None:
    lambda_client = stepfunctions._client("lambda")
    response = lambda_client.invoke(FunctionName="someone-else", Payload=b'{"a": 1}')
    assert json.loads(response["Payload"].read()) == {"a": 1}
