"""The dev template as a reviewed snapshot: any change to the infrastructure shows as a diff.

Update after an intended change with ``pytest tests/infra/test_snapshot.py --snapshot-update``
and review the diff of ``__snapshots__/`` like code.
"""

from __future__ import annotations

import json
import re

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.infra.support import (
    ASSET_HASH_PLACEHOLDER,
    Synthesized,
    normalize,
    synth_payment_stack,
    walk,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def json_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_dev_template_matches_snapshot(dev: Synthesized, json_snapshot: SnapshotAssertion) -> None:
    assert normalize(dev.template.to_json()) == json_snapshot


def test_asset_hashes_are_normalized(dev: Synthesized) -> None:
    normalized = normalize(dev.template.to_json())
    keys = [
        value["S3Key"] for value in walk(normalized) if isinstance(value, dict) and "S3Key" in value
    ]
    assert keys, "expected the function code and the layer as S3 assets"
    assert set(keys) == {f"{ASSET_HASH_PLACEHOLDER}.zip"}
    assert not re.search(r"[0-9a-f]{64}", json.dumps(normalized))


def test_two_syntheses_give_the_same_template(dev: Synthesized) -> None:
    _, again = synth_payment_stack("dev")
    assert normalize(again.to_json()) == normalize(dev.template.to_json())
