"""A bad context value on the command line is a clear message and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from payment_stack import PaymentPostingStack, StageConfig
from tests.infra.support import ROOT, make_app, stage_values

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
        (
            {"posting": "http", "coreBankingVpcId": "vpc-0abc12345",
             "coreBankingSubnetIds": "subnet-0aa11bb22", "coreBankingCidr": "10.20.0.0/16",
             "awsEndpoints": "bogus"},
            "takes prefix list ids (pl-...), security group ids (sg-...) or IPv4 CIDRs",
        ),
        ({"posting": "http", "coreBankingMtls": "maybe"}, "must be true or false, got 'maybe'"),
    ],
)  # fmt: skip
def test_a_bad_network_or_tls_setting_is_refused_with_its_message(
    context: dict[str, str], message: str
) -> None:
    """The same ValueError app.py turns into its message and exit 1 (shown above for two
    values: a subprocess per case would cost a synth each)."""
    config = StageConfig.from_dict("dev", stage_values("dev"))
    with pytest.raises(ValueError, match=re.escape(message)):
        PaymentPostingStack(make_app(**context), "PaymentPosting-dev", config=config)
