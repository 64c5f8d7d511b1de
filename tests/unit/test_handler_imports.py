"""What a cold start imports: each handler, imported as Lambda imports it, leaves the heavy
modules for the invocations that use them (docs/adr/0024-lazy-imports-on-the-payment-path.md).

Checked by what is in ``sys.modules`` of a fresh interpreter, not by time: a timed test would
fail on a busy machine; ``make bench-imports`` measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from payment_local.import_bench import HANDLERS, child_environment, handler_module

# Each was on a handler's import path before and is not needed to be ready for an event.
HEAVY = (
    "aws_xray_sdk",  # only for a traced invocation (handlers/tracing.py)
    "iso4217",  # the currency table, on the first amount validated
    "pycountry",  # the country table, on the first country validated
    "pydantic",  # the domain's models, on the first invocation
    "payment_posting_functions.domain.events",
    "payment_posting_functions.domain.generator",  # the sample source's, never the pipeline's
    "payment_posting_functions.domain.ledger_v2.dynamodb",
    "payment_posting_functions.domain.http_posting",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
)
# The whole point of keeping them: every handler logs and most publish metrics at once.
KEPT = ("boto3", "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics")

_LOADED = "import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"


def modules_after_import(handler: str) -> set[str]:
    completed = subprocess.run(  # noqa: S603 - this interpreter, a handler module's name
        [sys.executable, "-c", _LOADED.format(module=handler_module(handler))],
        env=child_environment({}, handler),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(completed.stdout))


@pytest.mark.parametrize("handler", HANDLERS)
def test_importing_a_handler_leaves_the_heavy_modules_for_later(handler: str) -> None:
    loaded = modules_after_import(handler)

    assert handler_module(handler) in loaded
    assert {
        name for name in loaded if any(name == h or name.startswith(f"{h}.") for h in HEAVY)
    } == set()
    assert set(KEPT) <= loaded


def test_a_handler_s_first_invocation_loads_what_its_import_left() -> None:
    # The other side of the trade: the domain is there once the handler has run.
    script = (
        "import json, sys, types\n"
        "from payment_posting_functions.handlers import screening_outcomes\n"
        "context = types.SimpleNamespace(function_name='f', memory_limit_in_mb=256,\n"
        "    invoked_function_arn='arn:aws:lambda:us-east-1:123456789012:function:f',\n"
        "    aws_request_id='r-1')\n"
        "try:\n"
        "    screening_outcomes.handler({'detail': {}}, context)\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, file=sys.stderr)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(  # noqa: S603 - this interpreter, the script above
        [sys.executable, "-c", script],
        env={
            **child_environment({}, "screening_outcomes"),
            "POWERTOOLS_METRICS_NAMESPACE": "ImportTests",
            # What Lambda sets for an invocation its tracing did not sample.
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(completed.stdout.splitlines()[-1]))

    assert "ValidationError" in completed.stderr  # an empty detail is refused, by pydantic
    assert {"pydantic", "payment_posting_functions.domain.events"} <= loaded
    assert "aws_xray_sdk" not in loaded  # not traced: no trace header says it is sampled
