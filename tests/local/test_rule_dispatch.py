"""Rule targets moto cannot run: Lambda (asynchronous invocation) and Step Functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from payment_local.clients import AwsClients
from payment_local.rules import (
    AsyncLambdaInvocation,
    Delivery,
    RuleDispatcher,
    StateMachineExecution,
    TapTarget,
    tap_registration,
)
from payment_posting_functions.domain.event_names import EventName
from tests.local import fixture_handlers
from tests.local.fixture_handlers import CALLS
from tests.local.support import ACCOUNT, REGION, create_queue, drain, make_function

BUS = "payments"
RULE = "to-target"
DETAIL = {"transactionId": "t-1", "amount": 12}


def _tap(clients: AwsClients, delivery: Delivery, **transform: Any) -> TapTarget:
    """A rule on a fresh bus whose only target is a tap queue feeding ``delivery``."""
    clients.events.create_event_bus(Name=BUS)
    url, arn = create_queue(clients, f"tap-{RULE}")
    clients.events.put_rule(
        Name=RULE, EventBusName=BUS, EventPattern=json.dumps({"source": ["payments.test"]})
    )
    clients.events.put_targets(Rule=RULE, EventBusName=BUS, Targets=[tap_registration("t", arn)])
    return TapTarget(rule_name=RULE, target_id="t", queue_url=url, delivery=delivery, **transform)


def _put(
    clients: AwsClients, detail: dict[str, Any] = DETAIL, source: str = "payments.test"
) -> None:
    response = clients.events.put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": source,
                "DetailType": EventName.TRANSACTION_AUTHORIZED.value,
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def _run(dispatcher: RuleDispatcher) -> int:
    total = 0
    while moved := dispatcher.poll():
        total += moved
    return total


def _invocation(
    clients: AwsClients, handler: str, on_failure_queue_url: str | None = None
) -> AsyncLambdaInvocation:
    return AsyncLambdaInvocation(
        function=make_function(handler),
        clients=clients,
        on_failure_queue_url=on_failure_queue_url,
    )


# -- Lambda targets ---------------------------------------------------------------------


def test_a_matching_event_reaches_the_function_once(clients: AwsClients) -> None:
    invocation = _invocation(clients, "always_ok")
    tap = _tap(clients, invocation)
    dispatcher = RuleDispatcher(clients, [tap])
    _put(clients)
    _put(clients, source="someone.else")  # does not match the rule

    assert _run(dispatcher) == 1
    assert _run(dispatcher) == 0

    (event,) = CALLS["always_ok"]
    assert event["source"] == "payments.test"
    assert event["detail-type"] == EventName.TRANSACTION_AUTHORIZED
    assert event["detail"] == DETAIL
    assert invocation.stats.delivered == 1
    assert invocation.stats.retried == 0
    assert drain(clients, tap.queue_url) == []


def test_a_function_failing_twice_is_retried_then_delivered(clients: AwsClients) -> None:
    fixture_handlers.FAILURES_LEFT["flaky"] = 2
    failures_url, _ = create_queue(clients, "on-failure")
    invocation = _invocation(clients, "flaky", failures_url)
    dispatcher = RuleDispatcher(clients, [_tap(clients, invocation)])
    _put(clients)

    _run(dispatcher)

    assert len(CALLS["flaky"]) == 3
    assert invocation.stats.retried == 2
    assert invocation.stats.delivered == 1
    assert invocation.stats.dead_lettered == 0
    assert drain(clients, failures_url) == []


def test_a_function_always_failing_goes_to_the_on_failure_queue(clients: AwsClients) -> None:
    failures_url, _ = create_queue(clients, "on-failure")
    invocation = _invocation(clients, "always_fail", failures_url)
    dispatcher = RuleDispatcher(clients, [_tap(clients, invocation)])
    _put(clients)

    _run(dispatcher)

    assert len(CALLS["always_fail"]) == 3  # one invocation and Lambda's two retries
    assert invocation.stats.retried == 2
    assert invocation.stats.delivered == 0
    assert invocation.stats.dead_lettered == 1
    (failed,) = drain(clients, failures_url)
    # An invocation record, as Lambda sends a destination: the event, and why it failed.
    record = json.loads(failed["Body"])
    assert record["requestPayload"]["detail"] == DETAIL
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert "always fails" in record["responsePayload"]["errorMessage"]


def test_maximum_retry_attempts_of_the_invoke_config_is_honoured(clients: AwsClients) -> None:
    invocation = _invocation(clients, "always_fail")
    invocation.maximum_retry_attempts = 0
    dispatcher = RuleDispatcher(clients, [_tap(clients, invocation)])
    _put(clients)

    _run(dispatcher)

    assert len(CALLS["always_fail"]) == 1
    assert invocation.stats.retried == 0


def test_without_a_failure_queue_the_event_is_dropped(clients: AwsClients) -> None:
    invocation = _invocation(clients, "always_fail")
    tap = _tap(clients, invocation)
    dispatcher = RuleDispatcher(clients, [tap])
    _put(clients)

    assert _run(dispatcher) == 1

    assert invocation.stats.dropped == 1
    assert invocation.stats.dead_lettered == 0
    assert drain(clients, tap.queue_url) == []  # not left to be redelivered forever


def test_input_path_hands_over_the_detail(clients: AwsClients) -> None:
    dispatcher = RuleDispatcher(
        clients, [_tap(clients, _invocation(clients, "always_ok"), input_path="$.detail")]
    )
    _put(clients)
    _run(dispatcher)
    assert CALLS["always_ok"] == [DETAIL]


def test_input_path_can_go_deeper(clients: AwsClients) -> None:
    dispatcher = RuleDispatcher(
        clients,
        [_tap(clients, _invocation(clients, "always_ok"), input_path="$.detail.amount")],
    )
    _put(clients)
    _run(dispatcher)
    assert CALLS["always_ok"] == [12]


def test_a_constant_input_replaces_the_event(clients: AwsClients) -> None:
    constant = {"action": "reconcile", "dryRun": True}
    tap = _tap(clients, _invocation(clients, "always_ok"), input_constant=json.dumps(constant))
    dispatcher = RuleDispatcher(clients, [tap])
    _put(clients)
    _run(dispatcher)
    assert CALLS["always_ok"] == [constant]


def test_an_input_transformer_shapes_what_the_function_gets(clients: AwsClients) -> None:
    transformer = {
        "InputPathsMap": {"id": "$.detail.transactionId", "amount": "$.detail.amount"},
        "InputTemplate": '{"transaction": "<id>", "cents": <amount>}',
    }
    tap = _tap(clients, _invocation(clients, "always_ok"), input_transformer=transformer)
    dispatcher = RuleDispatcher(clients, [tap])
    _put(clients)
    _run(dispatcher)
    assert CALLS["always_ok"] == [{"transaction": "t-1", "cents": 12}]


def test_a_function_target_gets_the_whole_event(clients: AwsClients) -> None:
    dispatcher = RuleDispatcher(clients, [_tap(clients, _invocation(clients, "always_ok"))])
    _put(clients)
    _run(dispatcher)
    (event,) = CALLS["always_ok"]
    assert event["account"] == ACCOUNT
    assert event["region"] == REGION


# -- Step Functions targets -------------------------------------------------------------


@pytest.fixture
def sfn_clients() -> Iterator[AwsClients]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield AwsClients(REGION)


def _state_machine(clients: AwsClients) -> str:
    arn: str = clients.stepfunctions.create_state_machine(
        name="pass",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
    )["stateMachineArn"]
    return arn


def test_each_event_starts_its_own_execution(sfn_clients: AwsClients) -> None:
    clients = sfn_clients
    machine = _state_machine(clients)
    execution = StateMachineExecution(state_machine_arn=machine, clients=clients)
    dispatcher = RuleDispatcher(clients, [_tap(clients, execution, input_path="$.detail")])
    _put(clients, {"n": 1})
    _put(clients, {"n": 2})

    assert _run(dispatcher) == 2

    executions = clients.stepfunctions.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 2
    assert len({e["name"] for e in executions}) == 2
    inputs = [
        json.loads(
            clients.stepfunctions.describe_execution(executionArn=e["executionArn"])["input"]
        )
        for e in executions
    ]
    assert sorted(i["n"] for i in inputs) == [1, 2]
    assert execution.stats.delivered == 2
    assert execution.stats.retried == 0


def test_a_failing_start_is_retried_then_dead_lettered(sfn_clients: AwsClients) -> None:
    clients = sfn_clients
    starts: list[str] = []
    clients.stepfunctions.meta.events.register(
        "provide-client-params.sfn.StartExecution",
        lambda params, **_: starts.append(params["stateMachineArn"]),
    )
    dlq_url, _ = create_queue(clients, "target-dlq")
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:missing"
    execution = StateMachineExecution(
        state_machine_arn=missing,
        clients=clients,
        maximum_retry_attempts=4,
        dead_letter_queue_url=dlq_url,
    )
    dispatcher = RuleDispatcher(clients, [_tap(clients, execution)])
    _put(clients)

    _run(dispatcher)

    assert starts == [missing] * 5
    assert execution.stats.retried == 4
    assert execution.stats.delivered == 0
    assert execution.stats.dead_lettered == 1
    (failed,) = drain(clients, dlq_url)
    assert json.loads(failed["Body"])["detail"] == DETAIL
    assert failed["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "StateMachineDoesNotExist"
