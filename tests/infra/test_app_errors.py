"""A bad context value on the command line is a clear message and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.infra.support import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "nope"}, "stage 'nope' is not defined"),
        ({"posting": "foo"}, "must be ledger or http, got 'foo'"),
    ],
)
def test_a_bad_context_value_exits_with_its_message_and_no_traceback(
    context: dict[str, str], message: str
) -> None:
    cdk_json = json.loads((ROOT / "cdk.json").read_text())["context"]
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({**cdk_json, **context})}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"posting": "http", "coreBankingVpcId": "vpc-0abc12345"}, "needs -c coreBankingSubnetIds"),
        (
            {"posting": "http", "coreBankingVpcId": "default",
             "coreBankingSubnetIds": "subnet-0aa11bb22", "coreBankingCidr": "10.20.0.0/16"},
            "must be a VPC id (vpc-...), got 'default'",
        ),
        (
            {"posting": "http", "coreBankingVpcId": "vpc-0abc12345",
             "coreBankingSubnetIds": "subnet-0aa11bb22", "coreBankingCidr": "10.20.0.0/33"},
            "must be an IPv4 CIDR",
        ),
        (
            {"coreBankingVpcId": "vpc-0abc12345", "coreBankingSubnetIds": "subnet-0aa11bb22",
             "coreBankingCidr": "10.20.0.0/16"},
            "need -c posting=http",
        ),
    ],
)  # fmt: skip
def test_a_bad_network_placement_exits_with_its_message(
    context: dict[str, str], message: str
) -> None:
    test_a_bad_context_value_exits_with_its_message_and_no_traceback(context, message)
