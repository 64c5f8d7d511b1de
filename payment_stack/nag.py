"""cdk-nag: the packs every synth runs, and acknowledgements, each with the reason it is accepted.

Why each pack's findings are fixed or acknowledged is docs/adr/0011-compliance-packs-at-synth.md.
``tests/infra/test_nag.py`` fails on an acknowledgement that no longer matches a finding.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Validations
from cdk_nag import AwsSolutionsChecks, NagPack, NIST80053R5Checks, PCIDSS321Checks
from constructs import IConstruct

# Rule ids are "<pack>-<rule>", e.g. PCI.DSS.321-LambdaInsideVPC.
PCI_DSS_321 = "PCI.DSS.321"
NIST_800_53_R5 = "NIST.800.53.R5"


def compliance_packs() -> list[NagPack]:
    """The packs that check every synth (app.py): an unacknowledged finding of any fails it."""
    return [AwsSolutionsChecks(), PCIDSS321Checks(), NIST80053R5Checks()]


def add_compliance_packs(scope: IConstruct) -> None:
    Validations.of(scope).add_plugins(*compliance_packs())


def acknowledge(scope: IConstruct, finding_id: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``scope`` and the constructs below it.

    ``finding_id`` is the rule, or the rule and finding for granular rules such as
    ``AwsSolutions-IAM5[Resource::*]``. An empty or vague reason is refused,
    since the reason is what an auditor reads.
    """
    if len(reason.split()) < 6:
        raise ValueError(f"acknowledgement of {finding_id} needs a specific reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))


def acknowledge_in_packs(
    scope: IConstruct,
    rule: str,
    reason: str,
    packs: Sequence[str] = (PCI_DSS_321, NIST_800_53_R5),
) -> None:
    """Accept the same rule (e.g. ``LambdaInsideVPC``) of several packs with one reason."""
    for pack in packs:
        acknowledge(scope, f"{pack}-{rule}", reason)


def acknowledge_inline_policy(role: IConstruct) -> None:
    """Accept the inline-policy finding on ``role`` (or the roles below it): ADR 0011."""
    acknowledge_in_packs(
        role,
        "IAMNoInlinePolicy",
        "The policy is this one role's own: written for the calls of the one component that "
        "assumes the role, created, changed and deleted with it in this stack, and attached to "
        "no other principal; a managed policy would only make it attachable to others.",
    )


def acknowledge_outside_vpc(
    function: IConstruct, services: Sequence[str], *, own_role: bool = True
) -> None:
    """Accept the VPC finding for a function whose code calls AWS service APIs only.

    ``services`` are the IAM service prefixes its role allows, e.g. ``("dynamodb", "kms")``;
    a test holds them equal to the role's. A function that calls anything else (an HTTP
    posting system) is not acknowledged here: its network path is a decision of its own.
    ``own_role``: False when the function runs as a role the user gave, which may allow more
    than the construct granted: the reason then says only what was granted.
    """
    allowed = "what its role allows" if own_role else "what the construct grants its role"
    acknowledge_in_packs(
        function,
        "LambdaInsideVPC",
        f"The function calls AWS service APIs only ({', '.join(services)}: {allowed}), with "
        "signed requests over TLS, and listens on no network: it is reached only "
        "through Lambda's Invoke API. What it may read or write is bounded by its role.",
    )
