"""The logical ids of every stateful resource, written out: a changed id replaces the resource.

CloudFormation identifies a resource by its logical id, which CDK derives from the construct
path. Moving a construct, renaming an id or wrapping it in a new scope changes that id, and a
deploy then creates a new table (or key, queue, bus...) and deletes the old one with its data.
The snapshot shows such a change among hundreds of lines; this test names it. If it fails on
purpose, the change needs a migration plan, not just a new list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.infra.support import Synthesized

pytestmark = pytest.mark.slow

# Resource types that hold data or whose replacement loses something: records, key material
# (and everything encrypted under it), queued messages, subscriptions, archived events, logs,
# execution history.
STATEFUL_TYPES = (
    "AWS::DynamoDB::GlobalTable",
    "AWS::DynamoDB::Table",
    "AWS::KMS::Key",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Events::EventBus",
    "AWS::Events::Archive",
    "AWS::Logs::LogGroup",
    "AWS::StepFunctions::StateMachine",
)

# Both stages, as synthesized from cdk.json's settings; the dev stage adds the sample source.
_BOTH_STAGES: dict[str, set[str]] = {
    "AWS::DynamoDB::GlobalTable": {
        "EnrichmentAccountsTableC3F274AE",
        "IngestDedupTable41D8D6D5",
        "IngestQuarantineTableD78707ED",
        "IngestTransactionsTable9E3B11FF",
        "PostingIdempotencyTableDD837A10",
        # Ledger v2 (issue 11) replaced PostingLedgerTableE207BFBF on purpose: a deploy
        # leaves the v1 table out of the stack, retained with its data (RETAIN), and creates
        # these two empty; there is no migration (CHANGELOG).
        "PostingLedgerBalancesC8C6254B",
        "PostingLedgerJournal06F8E462",
        "RulesEnginePendingReviewsC3E69F96",
    },
    "AWS::DynamoDB::Table": set(),
    "AWS::KMS::Key": {
        "IngestArchiveKeyB5DBF7B2",
        "IngestKey3FA2133C",
        "LedgerKey4AEFADD0",
        "OperationsKey2329F47A",
    },
    "AWS::SQS::Queue": {
        "EnrichmentDeadLetterQueue45DC72C7",
        "IngestBusDeadLetterQueue65B18A42",
        "IngestDeadLetterQueueE8016E9B",
        "PostingDeadLetterQueue319E3CFB",
        "PostingExpirySweeperDeadLetterQueueB7B4CF53",
        "PostingQueueA13C26D6",
        "RulesEngineDeadLetterQueue0153F4D1",
        "ScreeningOutcomesDeadLetterQueueB998BF65",
    },
    "AWS::SNS::Topic": {
        # Where every alarm goes (issue 13): new, nothing replaced.
        "OperationsTopicC9C1CC12",
        "RulesEngineFailureTopicA33C1BBD",
        "ScreeningOutcomesNotificationTopicD9EF1587",
    },
    "AWS::Events::EventBus": {"IngestEventBus09D93CBB"},
    "AWS::Events::Archive": {"IngestArchiveBDAF4B04"},
    "AWS::Logs::LogGroup": {
        "EnrichmentEnrichLogGroupC48CD2EA",
        "IngestDedupLogGroup13C34DCB",
        "IngestPipeLogGroupAEB4A545",
        "PostingExpirySweeperFunctionLogGroup88D3521D",
        "PostingPosterLogGroup4D5D9A24",
        "RulesEngineLogGroup3A0BDC19",
        "ScreeningOutcomesLogGroup1B81EFEB",
    },
    "AWS::StepFunctions::StateMachine": {"RulesEngineStateMachine5531B55C"},
}

_DEV_ONLY: dict[str, set[str]] = {"AWS::Logs::LogGroup": {"SampleSourceLogGroup423CD04E"}}

EXPECTED: dict[str, dict[str, set[str]]] = {
    "prod": _BOTH_STAGES,
    "dev": {kind: ids | _DEV_ONLY.get(kind, set()) for kind, ids in _BOTH_STAGES.items()},
}


def stateful_ids(resources: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {kind: set() for kind in STATEFUL_TYPES}
    for logical_id, resource in resources.items():
        if resource["Type"] in found:
            found[resource["Type"]].add(logical_id)
    return found


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stateful_logical_ids_do_not_change(stage: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(stage)
    found = stateful_ids(synthesized.resources)
    changes = {
        kind: {
            "new (was another id? a deploy would replace it)": sorted(found[kind] - expected),
            "gone (a deploy would delete it)": sorted(expected - found[kind]),
        }
        for kind, expected in EXPECTED[stage].items()
        if found[kind] != expected
    }
    assert not changes, f"stateful logical ids changed in {stage}: {changes}"
