"""Dead-letter queues, and the retry settings of the rule targets that fill them."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack.nag import acknowledge

DEAD_LETTER_RETENTION = Duration.days(14)
# EventBridge's retry of a rule target it cannot deliver to, before its dead-letter queue:
# enough to ride out a throttling spell, short enough that a person sees a real outage.
RULE_TARGET_RETRY_ATTEMPTS = 8
RULE_TARGET_MAX_EVENT_AGE = Duration.hours(6)


def dead_letter_queue(
    scope: Construct,
    construct_id: str,
    key: kms.IKey | None,
    removal_policy: RemovalPolicy,
    *,
    behind_a_queue: bool = False,
) -> sqs.Queue:
    """A TLS-only queue that keeps failed messages for 14 days (the SQS maximum).

    With ``key`` it is encrypted with that customer-managed key; without, with SQS-managed
    keys, for the one case where the customer key itself may be what failed.
    ``behind_a_queue``: a queue's redrive policy will name it, which cdk-nag sees; the
    dead-letter queues of pipes, rule targets and functions it cannot see, so they are
    acknowledged.
    """
    queue = sqs.Queue(
        scope,
        construct_id,
        removal_policy=removal_policy,
        encryption=sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.SQS_MANAGED,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    if behind_a_queue:
        return queue
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself the dead-letter queue; messages here wait for inspection and "
        "redrive, and a queue behind it would only hide them further.",
    )
    return queue
