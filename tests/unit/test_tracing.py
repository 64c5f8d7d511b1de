"""Tracing a handler: X-Ray loaded for the first traced invocation, and then what Powertools'
``capture_lambda_handler`` sends, as before the SDK was loaded lazily.

Each case runs in a fresh interpreter (the X-Ray SDK patches botocore for the whole process),
on "Lambda" (LAMBDA_TASK_ROOT set), with the X-Ray daemon address pointing at a UDP socket the
test reads: what the SDK would send to the daemon, nothing leaves the machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from payment_local.import_bench import child_environment

SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
NOT_SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad9;Sampled=0"

# Invokes a traced handler once per trace header given on the command line; prints whether
# the X-Ray SDK was loaded after each invocation.
_SCRIPT = """
import json, os, sys
from payment_posting_functions.handlers.tracing import capture_lambda_handler

@capture_lambda_handler
def handler(event, context):
    return {"answer": event["n"] * 2}

loaded = []
for n, header in enumerate(sys.argv[1:]):
    os.environ["_X_AMZN_TRACE_ID"] = header
    assert handler({"n": n}, None) == {"answer": n * 2}
    loaded.append("aws_xray_sdk" in sys.modules)
print(json.dumps(loaded))
"""


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    """A UDP socket where the X-Ray daemon would listen."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.5)
        yield udp


def invoke(headers: list[str], udp: socket.socket, **environment: str) -> list[bool]:
    host, port = udp.getsockname()
    completed = subprocess.run(  # noqa: S603 - this interpreter, the script above
        [sys.executable, "-c", _SCRIPT, *headers],
        env={
            **child_environment({}, "tracing"),
            "POWERTOOLS_SERVICE_NAME": "tracing-test",
            "AWS_XRAY_DAEMON_ADDRESS": f"{host}:{port}",
            **environment,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[bool] = json.loads(completed.stdout.splitlines()[-1])
    return loaded


def sent(udp: socket.socket) -> list[dict[str, object]]:
    """The subsegments sent to the daemon: each datagram is a header line, then the JSON."""
    documents: list[dict[str, object]] = []
    while True:
        try:
            datagram = udp.recv(65536).decode()
        except TimeoutError:
            return documents
        documents.append(json.loads(datagram.split("\n", 1)[1]))


def test_untraced_invocations_never_load_the_sdk(daemon: socket.socket) -> None:
    assert invoke([NOT_SAMPLED, NOT_SAMPLED], daemon) == [False, False]
    assert sent(daemon) == []


def test_tracing_disabled_never_loads_the_sdk_even_when_sampled(daemon: socket.socket) -> None:
    assert invoke([SAMPLED], daemon, POWERTOOLS_TRACE_DISABLED="true") == [False]
    assert sent(daemon) == []


def test_a_cold_sampled_invocation_is_traced_as_the_cold_start(daemon: socket.socket) -> None:
    assert invoke([SAMPLED], daemon) == [True]

    [subsegment] = sent(daemon)
    assert subsegment["name"] == "## handler"
    assert subsegment["annotations"] == {"ColdStart": True, "Service": "tracing-test"}
    assert "metadata" not in subsegment  # the response (card data) is never recorded


def test_a_sampled_invocation_after_untraced_ones_is_not_the_cold_start(
    daemon: socket.socket,
) -> None:
    assert invoke([NOT_SAMPLED, SAMPLED, SAMPLED], daemon) == [False, True, True]

    annotations = [subsegment["annotations"] for subsegment in sent(daemon)]
    assert annotations == [{"ColdStart": False, "Service": "tracing-test"}] * 2
