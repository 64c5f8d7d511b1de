"""Customer-managed keys, one per data domain, and what AWS services may do with each.

Three domains (docs/adr/0010-keys-per-data-domain.md): transaction data (the transactions
and dedup tables, the bus, every queue that carries a lifecycle event, idempotency records,
the pipe's definition), the ledger (ledger and account directory) and operations (the pipe's
failure records, notifications, logs). What a service does with a key on its own behalf is
in the key's policy, scoped to this stack's resources; what a role does, in the role's
policy (``payment_stack/grants.py``). A key the user brings is not ours to change: its policy
needs the same statements, and a warning says so.
"""

from __future__ import annotations

from aws_cdk import Annotations, ArnFormat, RemovalPolicy, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

EVENTS_SERVICE = "events.amazonaws.com"
# What CloudWatch Logs does with a log group's key (its documented key policy, the wildcards
# written out): encrypt new log data, decrypt it for readers, and describe the key.
LOGS_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
)
# EventBridge writing a queue encrypted with the key: a rule target or its dead-letter queue.
QUEUE_WRITER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# A pipe's role encrypting and reading the pipe's own definition (the filter pattern).
PIPE_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
PIPE_CONTEXT_KEY = "aws:pipe:arn"
PIPE_CONTEXT_KEYS = (PIPE_CONTEXT_KEY, "aws:pipes:arn")


def domain_key(
    scope: Construct, construct_id: str, *, description: str, removal_policy: RemovalPolicy
) -> kms.Key:
    """A symmetric key with yearly automatic rotation (old key material stays, so what it
    encrypted stays readable)."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy,
    )


def allow_logs_to_encrypt(scope: Construct, key: kms.IKey) -> None:
    """Let CloudWatch Logs encrypt this account's log groups in this region with ``key``.

    The condition names log groups, not these log groups: their ARNs depend on the key, so a
    key policy naming them would be a dependency cycle. Associating a log group with the key
    needs logs:AssociateKmsKey or a new log group, and readers need logs permissions; the key
    grants no reader anything.
    """
    stack = Stack.of(scope)
    _add_or_warn(
        scope,
        key,
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        ),
        f"allow logs.<region>.amazonaws.com {', '.join(LOGS_KEY_ACTIONS)} with a "
        "kms:EncryptionContext:aws:logs:arn condition, or the log groups cannot be created",
    )


def allow_bus_rules_to_encrypt(scope: Construct, key: kms.IKey, bus: events.IEventBus) -> None:
    """Let EventBridge write queues encrypted with ``key`` for the rules of ``bus`` only.

    A rule's target queue and a rule target's dead-letter queue are written by EventBridge
    itself. Rule ARNs are not named one by one (each rule depends on its queue, the queue on
    the key: a cycle); the rules of one bus are, by the ARN pattern ``rule/<bus>/*``. Without
    this scope, EventBridge would use the key for any rule or bus of the account, and the
    bus's own key statement, scoped to the bus, would be moot.
    """
    stack = Stack.of(scope)
    _add_or_warn(
        scope,
        key,
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
            actions=list(QUEUE_WRITER_KEY_ACTIONS),
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": rules_of(bus)},
            },
        ),
        f"allow {EVENTS_SERVICE} {' and '.join(QUEUE_WRITER_KEY_ACTIONS)} for the rules of the "
        "bus, or rule targets and their dead-letter queues stay empty",
    )


# What CloudWatch does with an encrypted topic's key to publish an alarm (the SNS guide's
# "compatibility with AWS services" statement).
ALARM_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


def allow_alarms_to_encrypt(scope: Construct, key: kms.IKey, alarm_arns: str) -> None:
    """Let CloudWatch use ``key`` to publish to a topic it encrypts, for the alarms whose ARN
    matches ``alarm_arns`` (this stack's, by name prefix) in this account only."""
    stack = Stack.of(scope)
    _add_or_warn(
        scope,
        key,
        iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisStackNotify",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=list(ALARM_KEY_ACTIONS),
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": alarm_arns},
            },
        ),
        "allow cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey* for this stack's "
        "alarms, or alarm notifications to the encrypted topic are dropped",
    )


def allow_pipe_to_use(scope: Construct, key: kms.IKey, pipe_role: iam.IRole) -> None:
    """Let the pipe's role encrypt and read a pipe's definition with ``key``.

    EventBridge Pipes documents this key policy: the role, bound by the encryption context to
    pipe data (``aws:pipe:arn`` or ``aws:pipes:arn``), plus DescribeKey, which has no
    encryption context. The pipe's own ARN depends on the key, so the context names this
    account's pipes.
    """
    stack = Stack.of(scope)
    principal = iam.ArnPrincipal(pipe_role.role_arn)
    pipes = stack.format_arn(service="pipes", resource="pipe", resource_name="*")
    statements = [
        iam.PolicyStatement(
            principals=[principal],
            actions=list(PIPE_KEY_ACTIONS),
            resources=["*"],
            # The Pipes guide spells the context key two ways (aws:pipes:arn in its text,
            # aws:pipe:arn in its key policy): accept either, but at least one must be there
            # and every one there must name a pipe of this account.
            conditions={
                "ArnLikeIfExists": {
                    f"kms:EncryptionContext:{key}": pipes for key in PIPE_CONTEXT_KEYS
                },
                "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": list(PIPE_CONTEXT_KEYS)},
            },
        ),
        iam.PolicyStatement(principals=[principal], actions=["kms:DescribeKey"], resources=["*"]),
    ]
    for statement in statements:
        _add_or_warn(
            scope,
            key,
            statement,
            "allow the pipe's role kms:GenerateDataKey and kms:Decrypt bound to the "
            f"kms:EncryptionContext:{PIPE_CONTEXT_KEY} of its pipe, and kms:DescribeKey, or the "
            "pipe cannot be created",
        )


def rules_of(bus: events.IEventBus) -> str:
    """The ARN pattern of the rules of ``bus`` (rules of the default bus have no bus part)."""
    stack = Stack.of(bus)
    name = bus_name(bus)
    if name == "default":
        return stack.format_arn(service="events", resource="rule", resource_name="*")
    return stack.format_arn(service="events", resource="rule", resource_name=f"{name}/*")


def bus_name(bus: events.IEventBus) -> str:
    """The name of ``bus`` as a key policy may name it.

    A bus created in this app has a name fixed at synth; ``event_bus_name`` would be a
    reference to the bus, which depends on its key: a key policy using it would be a cycle.
    """
    resource = bus.node.default_child
    if isinstance(resource, events.CfnEventBus):
        # CDK generates the name lazily; resolved, it is the literal the template holds.
        name = Stack.of(bus).resolve(resource.name)
        if isinstance(name, str) and not Token.is_unresolved(name):
            return name
    return bus.event_bus_name


def _add_or_warn(
    scope: Construct, key: kms.IKey, statement: iam.PolicyStatement, needed: str
) -> None:
    result = key.add_to_resource_policy(statement, allow_no_op=True)
    if not result.statement_added:
        Annotations.of(scope).add_warning_v2(
            "payment-posting:ImportedKeyPolicy",
            f"The encryption key is imported, so its key policy is yours to change: {needed}.",
        )
