"""cdk-nag acknowledgements: one call per finding, each with the reason it is accepted."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding_id: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``scope`` and the constructs below it.

    ``finding_id`` is the rule, or the rule and finding for granular rules such as
    ``AwsSolutions-IAM5[Resource::*]``. An empty or vague reason is refused,
    since the reason is what an auditor reads.
    """
    if len(reason.split()) < 6:
        raise ValueError(f"acknowledgement of {finding_id} needs a specific reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))
