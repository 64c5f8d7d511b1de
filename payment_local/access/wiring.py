"""Making each poller act as the principal AWS would act as, and checking, at start, what
AWS checks when the stack is created (who may assume each role; what an event source
mapping and a pipe's stream source need)."""

from __future__ import annotations

from payment_local.access.authorizer import Authorizer
from payment_local.access.calls import STREAM_SOURCE_ACTIONS, Check
from payment_local.clients import AwsClients
from payment_local.provision import Topology
from payment_local.rules import (
    AsyncLambdaInvocation,
    EventBridgeAccess,
    SqsDelivery,
    StateMachineExecution,
)

LAMBDA_SERVICE = "lambda.amazonaws.com"
PIPES_SERVICE = "pipes.amazonaws.com"
STATES_SERVICE = "states.amazonaws.com"
# What Lambda's SQS event source needs of the function's role (checked when it is created).
_EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def act_as_template_principals(topology: Topology, authorizer: Authorizer, region: str) -> None:
    clients: dict[str, AwsClients] = {}

    def signed_as(role_arn: str) -> AwsClients:
        if role_arn not in clients:
            clients[role_arn] = AwsClients(region, authorizer.credentials_for(role_arn))
        return clients[role_arn]

    for function in topology.functions.values():
        if function.role_arn:
            authorizer.check_assume_role(function.role_arn, LAMBDA_SERVICE)
            function.run_as(
                authorizer.role(function.role_arn), authorizer.credentials_for(function.role_arn)
            )
    for pipe in topology.pipes:
        if pipe.role_arn:
            authorizer.check_assume_role(pipe.role_arn, PIPES_SERVICE, pipe.arn)
            authorizer.check(
                authorizer.role(pipe.role_arn),
                [Check(action, pipe.stream_arn) for action in STREAM_SOURCE_ACTIONS],
            )
            pipe.run_as(authorizer, authorizer.role(pipe.role_arn), signed_as(pipe.role_arn))
    for state_machine, role_arn in topology.state_machine_roles.items():
        authorizer.check_assume_role(role_arn, STATES_SERVICE, state_machine)
    for source in topology.event_sources:
        source_role = source.function.role_arn
        if source_role:
            authorizer.check(
                authorizer.role(source_role),
                [Check(action, source.queue_arn) for action in _EVENT_SOURCE_ACTIONS],
            )
            source.run_as(signed_as(source_role))
    for tap in topology.tap_targets:
        delivery = tap.delivery
        if isinstance(delivery, (AsyncLambdaInvocation, StateMachineExecution, SqsDelivery)):
            delivery.eventbridge = EventBridgeAccess(authorizer, tap.rule_arn, tap.bus_arn)
        if isinstance(delivery, AsyncLambdaInvocation) and delivery.function.role_arn:
            delivery.function_clients = signed_as(delivery.function.role_arn)
        if isinstance(delivery, StateMachineExecution) and delivery.role_arn:
            delivery.clients = signed_as(delivery.role_arn)
