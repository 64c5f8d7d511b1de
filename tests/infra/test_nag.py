"""cdk-nag v3 (AWS Solutions): the stacks pass, and every acknowledgement says why."""

from __future__ import annotations

import re
from collections.abc import Mapping

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_sqs as sqs

from tests.infra.support import Synthesized, bare_stack

# What aws-cdk-lib >= 2.262.1 prefixes an acknowledged rule id with in the metadata.
ANNOTATION_PREFIX = "Annotation::"
# A rule of the AWS Solutions pack, optionally narrowed to one finding: IAM5[Action::kms:X*].
SPECIFIC_RULE_ID = re.compile(r"AwsSolutions-[A-Z]+[0-9]+(\[[A-Za-z]+::.+\])?")
# Rules that report one finding per wildcard: acknowledging the whole rule would hide new ones.
GRANULAR_RULES = {"AwsSolutions-IAM4", "AwsSolutions-IAM5"}
GENERIC_REASONS = {
    "ok",
    "okay",
    "suppressed",
    "fine",
    "n/a",
    "na",
    "todo",
    "ignore",
    "false positive",
}
MIN_REASON_WORDS = 8


def _report(scope: cdk.Stack) -> cdk.PolicyValidationPluginReport:
    return cdk_nag.AwsSolutionsChecks().validate_scope(scope)


def _describe(report: cdk.PolicyValidationPluginReport) -> str:
    return "\n".join(
        f"{violation.rule_name}: "
        + ", ".join(resource.construct_path or "?" for resource in violation.violating_resources)
        for violation in report.violations
    )


def acknowledgements(stack: cdk.Stack) -> list[tuple[str, str, str]]:
    """(construct path, rule id without prefix, reason) of every acknowledgement in the stack.

    The metadata entry's data maps the prefixed rule id to the reason, one rule per entry:
    ``{"Annotation::AwsSolutions-SQS3": "This queue is itself the dead-letter queue; ..."}``.
    """
    found: list[tuple[str, str, str]] = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            data = entry.data
            assert isinstance(data, Mapping), f"{construct.node.path}: {data!r}"
            for rule, reason in data.items():
                assert isinstance(rule, str)
                assert isinstance(reason, str)
                found.append((construct.node.path, rule.removeprefix(ANNOTATION_PREFIX), reason))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
class TestStacksPass:
    def test_no_aws_solutions_violations(self, stage: str, request: pytest.FixtureRequest) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        report = _report(synthesized.stack)
        assert report.success, _describe(report)
        assert list(report.violations) == [], _describe(report)

    def test_acknowledgements_are_specific_and_explained(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        found = acknowledgements(synthesized.stack)
        assert found, "expected the project's acknowledgements in the construct metadata"
        for path, rule, reason in found:
            where = f"{path} {rule}"
            assert SPECIFIC_RULE_ID.fullmatch(rule), f"{where}: not an AWS Solutions rule id"
            if rule.split("[")[0] in GRANULAR_RULES:
                assert "[" in rule, f"{where}: acknowledges every finding of the rule"
            normalized = reason.strip().lower().rstrip(".")
            assert normalized not in GENERIC_REASONS, f"{where}: generic reason {reason!r}"
            assert len(reason.split()) >= MIN_REASON_WORDS, f"{where}: reason too short"

    def test_no_acknowledgement_on_the_whole_stack(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        paths = {path for path, _, _ in acknowledgements(synthesized.stack)}
        assert synthesized.stack.node.path not in paths


def test_the_check_can_fail() -> None:
    stack = bare_stack("Negative")
    queue = sqs.Queue(stack, "Plain")  # no dead-letter queue, no enforce_ssl
    report = _report(stack)

    assert not report.success
    rules = {violation.rule_name for violation in report.violations}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules, _describe(report)
    paths = {
        resource.construct_path
        for violation in report.violations
        for resource in violation.violating_resources
    }
    assert paths == {f"{queue.node.path}/Resource"}


def test_an_acknowledgement_silences_only_its_rule() -> None:
    stack = bare_stack("Acknowledged")
    queue = sqs.Queue(stack, "Plain")
    cdk.Validations.of(queue).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-SQS3",
            reason="A test queue that is deliberately its own dead-letter queue.",
        )
    )
    rules = {violation.rule_name for violation in _report(stack).violations}
    assert "AwsSolutions-SQS3" not in rules
    assert "AwsSolutions-SQS4" in rules
