"""Grants of the actions the code calls, and of the key permissions the service holding the
data needs on the caller's behalf, usable through that service only (``kms:ViaService``).

CDK's grant helpers add what nobody calls (``kms:ReEncrypt*``, ``kms:GenerateDataKey*``,
``Scan`` and batch reads on a table written item by item) and leave the key usable directly.
Here every action is named; which ones each role needs is what the end-to-end suite records
(``tests/e2e/test_permissions_used.py`` fails on a grant nobody uses).

What each service asks KMS for, in the caller's name (the services' documentation):
- DynamoDB decrypts the table key, to read and to write items and to read the stream:
  ``kms:Decrypt``. The table key itself is generated once, by DynamoDB, when the table is made.
- SQS and SNS: a sender needs ``kms:GenerateDataKey`` and ``kms:Decrypt`` (a data key, reused
  for a while); a receiver ``kms:Decrypt``.
- EventBridge encrypts a bus's events as itself, so a publisher needs no key permission
  (the key policy allows EventBridge, ``payment_stack/keys.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jsii
from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

Service = Literal["dynamodb", "sqs", "sns", "secretsmanager"]

TABLE_KEY_ACTIONS = ("kms:Decrypt",)
SENDER_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
RECEIVER_KEY_ACTIONS = ("kms:Decrypt",)
# What EventBridge Pipes documents for a DynamoDB stream source.
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
# What Lambda's SQS event source polls with (Lambda's documentation; GetQueueAttributes when
# the mapping is created).
QUEUE_CONSUMER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# Looking at a queue's messages without taking them: a message received is hidden for the
# queue's visibility timeout, then visible again (nothing deletes it).
QUEUE_READER_ACTIONS = ("sqs:ReceiveMessage", "sqs:GetQueueAttributes")
# SQS dead-letter queue redrive (StartMessageMoveTask), as the SQS Developer Guide lists its
# minimum permissions ("Configuring queue permissions for dead-letter queue redrive"): on the
# dead-letter queue, the task's own actions (start, follow, cancel) and what SQS does there in
# the caller's name (receive, delete, read attributes), with the key's Decrypt; on the
# destination, SendMessage, with the key's GenerateDataKey and Decrypt.
REDRIVE_SOURCE_ACTIONS = (
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)
REDRIVE_DESTINATION_ACTIONS = ("sqs:SendMessage",)


def via(scope: IConstruct, service: Service) -> str:
    """The ``kms:ViaService`` value of ``service`` in the stack's region."""
    return f"{service}.{Stack.of(scope).region}.amazonaws.com"


def grant_key(
    key: kms.IKey, grantee: iam.IGrantable, service: Service, actions: Sequence[str]
) -> iam.Grant:
    """Let ``grantee`` use ``key`` for ``actions``, only in requests ``service`` makes for it.

    Called directly (an SDK call to KMS) or through any other service, the key refuses: a
    role that may read a queue cannot decrypt a table's ciphertext, or anything else, with
    the same key by asking KMS itself.
    """
    _refuse_wildcards(actions)
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(actions),
        resource_arns=[key.key_arn],
        conditions={"StringEquals": {"kms:ViaService": via(key, service)}},
    )


def grant_table(table: dynamodb.ITableV2, grantee: iam.IGrantable, *actions: str) -> iam.Grant:
    """``actions`` on the table, and its key's Decrypt through DynamoDB."""
    _refuse_wildcards(actions)
    grant = table.grant(grantee, *actions)
    if table.encryption_key is not None:
        grant = grant.combine(
            grant_key(table.encryption_key, grantee, "dynamodb", TABLE_KEY_ACTIONS)
        )
    return grant


def grant_stream_read(table: dynamodb.ITableV2, grantee: iam.IGrantable) -> None:
    """Read the table's stream (as a pipe does), and its key's Decrypt through DynamoDB."""
    if table.table_stream_arn is None:
        raise ValueError("grant_stream_read: the table has no stream")
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(STREAM_READ_ACTIONS),
        resource_arns=[table.table_stream_arn],
    )
    if table.encryption_key is not None:
        grant_key(table.encryption_key, grantee, "dynamodb", TABLE_KEY_ACTIONS)


def grant_send(queue: sqs.IQueue, grantee: iam.IGrantable) -> None:
    """SendMessage to the queue, and its key's data key through SQS."""
    queue.grant(grantee, "sqs:SendMessage")
    if queue.encryption_master_key is not None:
        grant_key(queue.encryption_master_key, grantee, "sqs", SENDER_KEY_ACTIONS)


def grant_consume(queue: sqs.IQueue, grantee: iam.IGrantable) -> None:
    """Poll the queue as Lambda's event source does, and its key's Decrypt through SQS."""
    queue.grant(grantee, *QUEUE_CONSUMER_ACTIONS)
    if queue.encryption_master_key is not None:
        grant_key(queue.encryption_master_key, grantee, "sqs", RECEIVER_KEY_ACTIONS)


def grant_read_messages(queue: sqs.IQueue, grantee: iam.IGrantable) -> iam.Grant:
    """Receive (and so look at) the queue's messages, and its key's Decrypt through SQS."""
    grant = queue.grant(grantee, *QUEUE_READER_ACTIONS)
    if queue.encryption_master_key is not None:
        key = queue.encryption_master_key
        grant = grant.combine(grant_key(key, grantee, "sqs", RECEIVER_KEY_ACTIONS))
    return grant


def grant_message_move(
    dead_letters: sqs.IQueue, destination: sqs.IQueue, grantee: iam.IGrantable
) -> iam.Grant:
    """Move the messages of ``dead_letters`` into ``destination`` (StartMessageMoveTask), and
    follow or cancel the move; each queue's key through SQS, for what SQS does with it."""
    grant = dead_letters.grant(grantee, *REDRIVE_SOURCE_ACTIONS)
    grant = grant.combine(destination.grant(grantee, *REDRIVE_DESTINATION_ACTIONS))
    if dead_letters.encryption_master_key is not None:
        key = dead_letters.encryption_master_key
        grant = grant.combine(grant_key(key, grantee, "sqs", RECEIVER_KEY_ACTIONS))
    if destination.encryption_master_key is not None:
        key = destination.encryption_master_key
        grant = grant.combine(grant_key(key, grantee, "sqs", SENDER_KEY_ACTIONS))
    return grant


def chosen_actions(
    owner: str, purpose: str, actions: Sequence[str], allowed: Sequence[str]
) -> tuple[str, ...]:
    """``actions`` (all of ``allowed`` when none is given), each one of ``allowed``.

    ``purpose`` says who calls them, for the error: "a reader of the ledger".
    """
    unknown = set(actions) - set(allowed)
    if unknown:
        raise ValueError(
            f"{owner}: {purpose} calls {', '.join(allowed)}, not {', '.join(sorted(unknown))}"
        )
    return tuple(actions) or tuple(allowed)


def grant_publish_to_topic(topic: sns.ITopic, grantee: iam.IGrantable) -> None:
    """Publish to the topic, and its key's data key through SNS."""
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["sns:Publish"], resource_arns=[topic.topic_arn]
    )
    if topic.master_key is not None:
        grant_key(topic.master_key, grantee, "sns", SENDER_KEY_ACTIONS)


@jsii.implements(lambda_.IDestination)
class QueueDestination:
    """A function's on-failure destination: the queue, written with the function's role.

    CDK's ``SqsDestination`` grants the role SendMessage with GetQueueAttributes,
    GetQueueUrl and the key's wildcards; Lambda sends only.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(
        self,
        scope: Construct,
        fn: lambda_.IFunction,
        *,
        type: lambda_.DestinationType | None = None,
    ) -> lambda_.DestinationConfig:
        grant_send(self.queue, fn)
        return lambda_.DestinationConfig(destination=self.queue.queue_arn)


def _refuse_wildcards(actions: Sequence[str]) -> None:
    wildcards = [action for action in actions if "*" in action]
    if wildcards or not actions:
        raise ValueError(f"name each action the code calls, not {wildcards or 'none'}")
