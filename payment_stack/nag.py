"""cdk-nag acknowledgements: one call per finding, each with the reason it is accepted."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding_id: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``scope`` and the constructs below it.

    ``finding_id`` is the rule, or the rule and finding for granular rules such as
    ``AwsSolutions-IAM5[Action::kms:GenerateDataKey*]``. An empty or vague reason is refused,
    since the reason is what an auditor reads.
    """
    if len(reason.split()) < 6:
        raise ValueError(f"acknowledgement of {finding_id} needs a specific reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))


# The actions CDK's grant_encrypt / grant_encrypt_decrypt write with wildcards.
KMS_GRANT_WILDCARDS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


def acknowledge_kms_grant_wildcards(scope: IConstruct, reason: str) -> None:
    """Accept the IAM5 findings CDK's KMS grants raise below ``scope``, with one reason."""
    for action in KMS_GRANT_WILDCARDS:
        acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", reason)
