"""cdk-nag v3 (AWS Solutions, PCI DSS 3.2.1, NIST 800-53 rev 5): the stacks pass, every
acknowledgement says why, and none outlives the finding it accepts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct

from payment_stack import nag
from tests.infra.support import (
    CDK_JSON_CONTEXT,
    SKIP_BUNDLING,
    Synthesized,
    all_allowed_actions,
    bare_stack,
    logical_id,
    synth_payment_stack,
)

# What aws-cdk-lib >= 2.262.1 prefixes an acknowledged rule id with in the metadata.
ANNOTATION_PREFIX = "Annotation::"
PACKS: dict[str, type[cdk_nag.NagPack]] = {
    "AwsSolutions": cdk_nag.AwsSolutionsChecks,
    nag.PCI_DSS_321: cdk_nag.PCIDSS321Checks,
    nag.NIST_800_53_R5: cdk_nag.NIST80053R5Checks,
}
# A rule of one of the packs, optionally narrowed to one finding: IAM5[Action::kms:X*].
SPECIFIC_RULE_ID = re.compile(
    r"(AwsSolutions-[A-Z]+[0-9]+|PCI\.DSS\.321-[A-Za-z0-9]+|NIST\.800\.53\.R5-[A-Za-z0-9]+)"
    r"(\[[A-Za-z]+::.+\])?"
)
# Rules that report one finding per wildcard: acknowledging the whole rule would hide new ones.
# (The PCI DSS and NIST packs have no such rule for the resources of this stack.)
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
STAGES = ["dev", "prod"]


@dataclass(frozen=True)
class Acknowledged:
    """One acknowledgement: the construct it was made on, the rule id, the reason."""

    path: str
    rule: str
    reason: str


def _reports(scope: IConstruct) -> list[cdk.PolicyValidationPluginReport]:
    return [pack().validate_scope(scope) for pack in PACKS.values()]


def _describe(report: cdk.PolicyValidationPluginReport) -> str:
    return "\n".join(
        f"{violation.rule_name}: "
        + ", ".join(resource.construct_path or "?" for resource in violation.violating_resources)
        for violation in report.violations
    )


def acknowledged_constructs(stack: cdk.Stack) -> Iterator[tuple[IConstruct, Acknowledged]]:
    """Every acknowledgement in the stack's construct metadata, with its construct.

    The metadata entry's data maps the prefixed rule id to the reason, one rule per entry:
    ``{"Annotation::AwsSolutions-SQS3": "This queue is itself the dead-letter queue; ..."}``.
    """
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            data = entry.data
            assert isinstance(data, Mapping), f"{construct.node.path}: {data!r}"
            for rule, reason in data.items():
                assert isinstance(rule, str)
                assert isinstance(reason, str)
                path = construct.node.path
                yield construct, Acknowledged(path, rule.removeprefix(ANNOTATION_PREFIX), reason)


def acknowledgements(stack: cdk.Stack) -> list[Acknowledged]:
    return [ack for _, ack in acknowledged_constructs(stack)]


class _RecordingValidations:
    """Stands in for ``aws_cdk.Validations`` in payment_stack.nag: records, accepts nothing."""

    def __init__(self) -> None:
        self.recorded: list[Acknowledged] = []

    def of(self, scope: IConstruct) -> _RecordingScope:
        return _RecordingScope(self.recorded, scope)


@dataclass
class _RecordingScope:
    recorded: list[Acknowledged]
    scope: IConstruct

    def acknowledge(self, acknowledgment: cdk.Acknowledgment) -> None:
        self.recorded.append(
            Acknowledged(self.scope.node.path, acknowledgment.id, acknowledgment.reason)
        )


@dataclass(frozen=True)
class Unacknowledged:
    """A stack built with every acknowledgement recorded instead of made."""

    stack: cdk.Stack
    recorded: list[Acknowledged]


def recording_acknowledgements(build: Any) -> Unacknowledged:
    """Build a stack (``build()`` returns it) while payment_stack.nag records, not acknowledges."""
    recorder = _RecordingValidations()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nag, "Validations", recorder)
        stack = build()
    return Unacknowledged(stack, recorder.recorded)


def findings(reports: Iterable[cdk.PolicyValidationPluginReport]) -> Iterator[tuple[str, str]]:
    """(rule id, construct path of the CFN resource) of every finding."""
    for report in reports:
        for violation in report.violations:
            for resource in violation.violating_resources:
                yield violation.rule_name, resource.construct_path or ""


def stale(
    acknowledged: Iterable[Acknowledged], reports: Iterable[cdk.PolicyValidationPluginReport]
) -> list[Acknowledged]:
    """The acknowledgements that accept no finding: none of the packs reports their rule on
    their construct or below it (which is what an acknowledgement covers)."""
    found = set(findings(reports))
    return [
        ack
        for ack in acknowledged
        if not any(
            rule == ack.rule and (path == ack.path or path.startswith(ack.path + "/"))
            for rule, path in found
        )
    ]


@pytest.fixture(scope="module")
def unacknowledged() -> dict[str, Unacknowledged]:
    """Each stage built without its acknowledgements, and what they would have been."""
    return {
        stage: recording_acknowledgements(lambda stage=stage: synth_payment_stack(stage)[0])
        for stage in STAGES
    }


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
class TestStacksPass:
    @pytest.mark.parametrize("pack", list(PACKS))
    def test_no_violations(self, stage: str, pack: str, request: pytest.FixtureRequest) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        report = PACKS[pack]().validate_scope(synthesized.stack)
        assert report.success, _describe(report)
        assert list(report.violations) == [], _describe(report)

    def test_acknowledgements_are_specific_and_explained(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        found = acknowledgements(synthesized.stack)
        assert found, "expected the project's acknowledgements in the construct metadata"
        for ack in found:
            where = f"{ack.path} {ack.rule}"
            assert SPECIFIC_RULE_ID.fullmatch(ack.rule), f"{where}: not a rule id of the packs"
            if ack.rule.split("[")[0] in GRANULAR_RULES:
                assert "[" in ack.rule, f"{where}: acknowledges every finding of the rule"
            normalized = ack.reason.strip().lower().rstrip(".")
            assert normalized not in GENERIC_REASONS, f"{where}: generic reason {ack.reason!r}"
            assert len(ack.reason.split()) >= MIN_REASON_WORDS, f"{where}: reason too short"

    def test_no_acknowledgement_on_the_whole_stack(
        self, stage: str, request: pytest.FixtureRequest
    ) -> None:
        synthesized: Synthesized = request.getfixturevalue(stage)
        paths = {ack.path for ack in acknowledgements(synthesized.stack)}
        assert synthesized.stack.node.path not in paths


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
class TestNoStaleAcknowledgement:
    def test_every_acknowledgement_accepts_a_finding(
        self, stage: str, unacknowledged: dict[str, Unacknowledged]
    ) -> None:
        built = unacknowledged[stage]
        assert built.recorded, "no acknowledgement was recorded"
        unused = stale(built.recorded, _reports(built.stack))
        assert not unused, "acknowledgements that match no finding (delete them):\n" + "\n".join(
            f"{ack.path}: {ack.rule}" for ack in unused
        )

    def test_every_acknowledgement_is_made_through_nag_acknowledge(
        self, stage: str, unacknowledged: dict[str, Unacknowledged], request: pytest.FixtureRequest
    ) -> None:
        """What the stale check saw is all there is: no acknowledgement bypasses the recorder."""
        synthesized: Synthesized = request.getfixturevalue(stage)
        recorded = unacknowledged[stage].recorded
        assert sorted(set(recorded), key=repr) == sorted(
            set(acknowledgements(synthesized.stack)), key=repr
        )


def test_the_stale_check_can_fail() -> None:
    reason = "A test queue, acknowledged here to see whether the check notices it."

    def build() -> cdk.Stack:
        stack = bare_stack("Stale")
        dlq = sqs.Queue(stack, "Dlq", enforce_ssl=True)
        queue = sqs.Queue(
            stack,
            "Queue",
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=3),
        )
        # A sibling whose path starts with the compliant queue's: its finding is not theirs.
        without_dlq = sqs.Queue(stack, "QueueWithoutDlq", enforce_ssl=True)
        nag.acknowledge(without_dlq, "AwsSolutions-SQS3", reason)  # accepts a finding
        nag.acknowledge(without_dlq, "AwsSolutions-SQS4", reason)  # stale: it enforces TLS
        nag.acknowledge(queue, "AwsSolutions-SQS3", reason)  # stale: it has a DLQ
        return stack

    built = recording_acknowledgements(build)
    unused = stale(built.recorded, _reports(built.stack))

    assert [(ack.path, ack.rule) for ack in unused] == [
        ("Stale/QueueWithoutDlq", "AwsSolutions-SQS4"),
        ("Stale/Queue", "AwsSolutions-SQS3"),
    ]


def test_an_acknowledgement_silences_only_its_rule() -> None:
    stack = bare_stack("Acknowledged")
    queue = sqs.Queue(stack, "Plain")
    nag.acknowledge(
        queue, "AwsSolutions-SQS3", "A test queue that is deliberately without a dead-letter queue."
    )
    rules = {violation.rule_name for report in _reports(stack) for violation in report.violations}
    assert "AwsSolutions-SQS3" not in rules
    assert "AwsSolutions-SQS4" in rules


def test_the_checks_can_fail() -> None:
    stack = bare_stack("Negative")
    queue = sqs.Queue(stack, "Plain")  # no dead-letter queue, no enforce_ssl
    log_group = logs.LogGroup(stack, "Logs")  # no key, retention 2 years (CDK's default)
    rules = set(findings(_reports(stack)))

    queue_path = f"{queue.node.path}/Resource"
    log_path = f"{log_group.node.path}/Resource"
    assert {
        ("AwsSolutions-SQS3", queue_path),
        ("AwsSolutions-SQS4", queue_path),
        ("PCI.DSS.321-CloudWatchLogGroupEncrypted", log_path),
        ("NIST.800.53.R5-CloudWatchLogGroupEncrypted", log_path),
    } <= rules, rules


@pytest.mark.slow
def test_synth_runs_every_pack(tmp_path: Path) -> None:
    """What app.py registers: a finding of any of the three packs fails the synth."""
    app = cdk.App(outdir=str(tmp_path), context={**CDK_JSON_CONTEXT, **SKIP_BUNDLING})
    stack = cdk.Stack(app, "Checked")
    sqs.Queue(stack, "Plain")
    logs.LogGroup(stack, "Logs")
    nag.add_compliance_packs(app)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    failed = {
        plugin["pluginName"]
        for plugin in report["pluginReports"]
        if plugin["conclusion"] == "failure"
    }
    assert failed == set(PACKS)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_functions_said_to_call_only_aws_apis_are_allowed_only_those(
    stage: str, request: pytest.FixtureRequest
) -> None:
    """The reason of each LambdaInsideVPC acknowledgement names the services the function's
    role allows; if a grant adds or drops one, the reason is no longer true."""
    synthesized: Synthesized = request.getfixturevalue(stage)
    checked = 0
    for function, ack in acknowledged_constructs(synthesized.stack):
        if not ack.rule.endswith("-LambdaInsideVPC"):
            continue
        assert isinstance(function, lambda_.Function), ack.path
        assert function.role is not None
        match = re.search(r"AWS service APIs only \(([a-z0-9, ]+):", ack.reason)
        assert match, f"{ack.path}: the reason names no services"
        named = {service.strip() for service in match.group(1).split(",")}
        role_id = logical_id(function.role)
        allowed = {
            action.split(":")[0] for action in all_allowed_actions(synthesized.template, role_id)
        }
        assert allowed == named, f"{ack.path}: role allows {sorted(allowed)}"
        checked += 1
    assert checked, "no LambdaInsideVPC acknowledgement found"
