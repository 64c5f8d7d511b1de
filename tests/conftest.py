"""Settings every test layer shares: no real AWS, and the project's own Node for jsii."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Never reach AWS: fake credentials and a fixed region, set before any client is created.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-west-1",
    AWS_REGION="eu-west-1",
    # botocore 1.44 sends DynamoDB Streams calls to an account-specific host moto does not route.
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    POWERTOOLS_TRACE_DISABLED="1",
    POWERTOOLS_METRICS_NAMESPACE="PaymentPostingTests",
    POWERTOOLS_SERVICE_NAME="tests",
)
for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(proxy, None)

# jsii starts `node` from PATH; prefer the Node the project installs (make links it here), so
# a bare `pytest` behaves like `make test` and prints no end-of-life banner.
_NODE_BIN = ROOT / ".venv" / "node-bin"
if _NODE_BIN.is_dir():
    os.environ["PATH"] = f"{_NODE_BIN}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture
def lambda_context() -> object:
    """The attributes Powertools reads from a Lambda context."""

    class Context:
        function_name = "test-function"
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
        memory_limit_in_mb = 256
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        log_group_name = "/aws/lambda/test-function"
        log_stream_name = "stream"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 30_000

    return Context()
