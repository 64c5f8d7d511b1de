"""The business-rules definition, checked without running it: statelint, and house rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from payment_posting_functions.domain.card_message import TRANSACTION_TYPES, TransactionType
from payment_posting_functions.domain.events import BY_NAME, EventSource
from payment_stack.rules_engine import EVENT_NAME_SUBSTITUTIONS
from tests.workflow.conftest import DEFINITION, substitute, substitutions

STATELINT = Path(sys.executable).parent / "statelint"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:rules-failures"
STATES: dict[str, dict[str, Any]] = json.loads(DEFINITION.read_text())["States"]
# The definition as deployed: every ${Name} replaced as CloudFormation does.
DEPLOYED: dict[str, dict[str, Any]] = json.loads(
    substitute(DEFINITION.read_text(), substitutions(TOPIC_ARN))
)["States"]
TASKS = sorted(name for name, state in STATES.items() if state["Type"] == "Task")
PUT_EVENTS = sorted(
    name for name in TASKS if STATES[name]["Resource"] == "arn:aws:states:::events:putEvents"
)
PENDING_REVIEW_TASKS = sorted(
    name for name in TASKS if STATES[name]["Resource"].startswith("arn:aws:states:::dynamodb:")
)
CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"


def statelint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own statelint on a file we wrote
        [str(STATELINT), str(path)], capture_output=True, text=True, check=False, timeout=60
    )


def test_the_definition_as_written_is_valid() -> None:
    result = statelint(DEFINITION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_definition_as_deployed_is_valid(tmp_path: Path) -> None:
    deployed = tmp_path / "business_rules.json"
    deployed.write_text(substitute(DEFINITION.read_text(), substitutions(TOPIC_ARN)))
    json.loads(deployed.read_text())  # the values do not break the JSON

    result = statelint(deployed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_refuses_a_choice_pointing_nowhere(tmp_path: Path) -> None:
    broken: dict[str, Any] = json.loads(DEFINITION.read_text())
    broken["States"]["Validate"]["Choices"][1]["Next"] = "RejectNoSuchRule"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))

    result = statelint(path)
    assert result.returncode == 1
    assert "RejectNoSuchRule" in result.stdout + result.stderr


def test_the_placeholders_are_those_the_stack_substitutes() -> None:
    names = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text()))
    assert names <= set(substitutions(TOPIC_ARN))
    # Every setting and resource the stack substitutes is used; of the catalogue's names,
    # those the rules publish.
    assert set(substitutions(TOPIC_ARN)) - set(EVENT_NAME_SUBSTITUTIONS) <= names


def test_there_are_tasks_to_check() -> None:
    assert len(PUT_EVENTS) == 8
    assert len(PENDING_REVIEW_TASKS) == 4
    assert {"NotifyRejected", "NotifyWorkflowFailure", "NotifyDecisionNotTaken"} <= set(TASKS)


@pytest.mark.parametrize("name", TASKS)
def test_every_task_retries(name: str) -> None:
    retriers = STATES[name].get("Retry", [])
    assert retriers, f"{name} has no Retry"
    # Any error is retried, but for a failed condition: that is the table's answer, and
    # asking again changes nothing (the retrier for it comes first, so it is the one used).
    assert retriers[-1]["ErrorEquals"] == ["States.ALL"]
    assert retriers[-1].get("MaxAttempts", 3) >= 1
    for retrier in retriers[:-1]:
        assert retrier == {"ErrorEquals": [CONDITION_FAILED], "MaxAttempts": 0}


@pytest.mark.parametrize("name", PENDING_REVIEW_TASKS)
def test_every_pending_review_call_names_the_table_and_one_transaction(name: str) -> None:
    parameters = STATES[name]["Parameters"]
    assert parameters["TableName"] == "${PendingReviewsTableName}"
    key = parameters.get("Key") or {"transactionId": parameters["Item"]["transactionId"]}
    assert key == {"transactionId": {"S.$": "$.detail.transactionId"}}
    if STATES[name]["Resource"].endswith(":getItem"):
        assert parameters["ConsistentRead"] is True  # what the claim just wrote, not older
        return
    # Each write is conditional: a second hold or decision cannot overwrite the first.
    assert parameters["ConditionExpression"]
    # A failed condition is handled, never an execution's unexplained failure.
    handled = [c for c in STATES[name]["Catch"] if c["ErrorEquals"] == [CONDITION_FAILED]]
    assert handled, name


@pytest.mark.parametrize("name", PUT_EVENTS)
def test_every_event_goes_to_the_payments_bus_as_the_rules_source(name: str) -> None:
    entries = STATES[name]["Parameters"]["Entries"]
    assert entries
    for entry in entries:
        assert entry["EventBusName"] == "${EventBusName}"
        # Names are the catalogue's, substituted, never written out in the file.
        assert entry["Source"] == entry["Detail"]["source"] == "${RulesSource}"
        assert re.fullmatch(r"\$\{\w+\}", entry["DetailType"]), entry["DetailType"]
        assert entry["Detail"]["name"] == entry["DetailType"]
    for entry in DEPLOYED[name]["Parameters"]["Entries"]:
        # Deployed, the detail names the event it is, and the catalogue knows it as a rules
        # event.
        assert entry["Source"] == EventSource.RULES
        assert entry["DetailType"] in BY_NAME
        assert BY_NAME[entry["DetailType"]].SOURCE is EventSource.RULES


def test_the_inquiries_the_rules_complete_are_the_record_types_of_inquiries() -> None:
    # The processing codes the workflow treats as inquiries, and those the record model
    # calls one (ISO 8583 DE 3, positions 1-2), are the same.
    patterns = [
        rule["StringMatches"]
        for choice in STATES["IsInquiry"]["Choices"]
        for rule in _rules(choice)
        if "StringMatches" in rule
    ]
    inquiries = {
        code for code, kind in TRANSACTION_TYPES.items() if kind is TransactionType.INQUIRY
    }
    assert sorted(patterns) == sorted(f"{code}*" for code in inquiries)


def _rules(rule: dict[str, Any]) -> list[dict[str, Any]]:
    nested = [rule]
    for key in ("And", "Or"):
        for inner in rule.get(key, []):
            nested += _rules(inner)
    return nested
