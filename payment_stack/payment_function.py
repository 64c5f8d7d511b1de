"""A Lambda function with the project's defaults: its own role (or one given), log group and
tracing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from payment_stack.keys import allow_logs_to_encrypt
from payment_stack.lambda_package import ARCHITECTURE, RUNTIME, LambdaPackage
from payment_stack.nag import acknowledge, acknowledge_inline_policy
from payment_stack.observability import Observability
from payment_stack.props import role as role_prop

METRICS_NAMESPACE = "PaymentPosting"


class PaymentFunction(Construct):
    """A function from the shared code asset (the ``payment_posting_functions`` package).

    Its role starts empty (no AWS managed policy): it may write to its own log group and, unless
    tracing is off, to X-Ray, and everything else is granted by the construct that uses it.
    Its log group is encrypted with a customer-managed key, which CloudWatch Logs is allowed to use.

    Given a ``role``, the function runs as that role and every grant goes to it instead. The
    construct then acknowledges no cdk-nag finding on the role: what else the role may do is
    not known here, so a reason given for it could be untrue (see the README).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        service_name: str,
        log_encryption_key: kms.IKey,
        environment: Mapping[str, str] | None = None,
        timeout: Duration | None = None,
        memory_size: int = 256,
        reserved_concurrent_executions: int | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        role: iam.IRole | None = None,
    ) -> None:
        """
        :param handler: module and function in the functions package, e.g.
            ``payment_posting_functions.handlers.dedup.handler``.
        :param service_name: Powertools service name, shown in every log line and metric.
        :param log_encryption_key: encrypts the log group (the operations key of the stack).
        :param timeout: default 30 seconds.
        :param memory_size: default 256 MB (also buys CPU: pydantic validation is CPU-bound).
        :param reserved_concurrent_executions: concurrency kept for this function alone, and its
            ceiling. Default: none, the function shares the account's pool.
        :param log_retention: default three months.
        :param log_removal_policy: default RETAIN, logs are audit material.
        :param vpc: default none. In a VPC, the caller grants the network-interface actions
            (the role has no managed policy).
        :param role: the execution role, assumable by ``lambda.amazonaws.com``. Default: a new
            role with no managed policy. A role given gets the function's grants added to its
            policy; one imported with ``mutable=False`` gets none, and you grant them.
        """
        super().__init__(scope, construct_id)
        given_role = role_prop("PaymentFunction", "role", role, "lambda")
        # The ``service`` dimension of the function's Powertools metrics.
        self.service_name = service_name
        package = LambdaPackage.of(self)
        # Log level and tracing: the stage's setting (payment_stack.observability).
        observability = Observability.of(self)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            removal_policy=log_removal_policy,
            encryption_key=log_encryption_key,
        )
        allow_logs_to_encrypt(self, log_encryption_key)
        self.role: iam.IRole = given_role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {description}",
        )
        # True when the role is this construct's own, so its cdk-nag findings are ours to
        # acknowledge (and its policy holds this function's grants alone).
        self.owns_role = given_role is None
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=package.code,
            layers=[package.dependencies_layer],
            handler=handler,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=observability.application_log_level,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=observability.function_tracing,
            timeout=timeout or Duration.seconds(30),
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrent_executions,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=list(security_groups) if security_groups else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **(environment or {}),
            },
        )
        self.log_group.grant_write(self.role)
        if not self.owns_role:
            return
        acknowledge_inline_policy(self.role)
        if observability.tracing == "off":
            return  # no X-Ray grant, nothing to acknowledge
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments and PutTelemetryRecords do not support resource-level "
            "permissions; AWS documents '*' as the only resource for them.",
        )
