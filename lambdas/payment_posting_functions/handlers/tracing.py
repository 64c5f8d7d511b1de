"""X-Ray tracing of a handler, with the X-Ray SDK loaded only for an invocation that is traced.

Powertools' ``Tracer`` imports the X-Ray SDK when it is created, traced or not, and the SDK was
the largest single cost of a cold start (docs/adr/0024-lazy-imports-on-the-payment-path.md).
Most invocations are not traced: a stage samples (``tracing: sampled``) or turns tracing off,
and the local runtime and the tests disable it. So the ``Tracer`` is built on the first
invocation that would be traced, and from then on every invocation goes through it, exactly as
``@tracer.capture_lambda_handler`` did from the first. An invocation that is not traced
produces no trace data either way: the SDK records nothing for a segment Lambda did not sample.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

Handler = TypeVar("Handler", bound=Callable[..., Any])

# What Powertools reads as true (aws_lambda_powertools.shared.functions.strtobool).
_TRUTHY = frozenset({"1", "y", "yes", "t", "true", "on"})


def tracing_enabled() -> bool:
    """Would Powertools' ``Tracer`` trace here? Not when POWERTOOLS_TRACE_DISABLED is true, nor
    outside Lambda (no LAMBDA_TASK_ROOT) or in the SAM or Chalice emulators: the conditions
    of its ``_is_tracer_disabled``."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return False
    if not os.environ.get("LAMBDA_TASK_ROOT"):
        return False
    return not (os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))


def invocation_sampled() -> bool:
    """Lambda's trace header for this invocation (``_X_AMZN_TRACE_ID``) does not say
    ``Sampled=0``. Anything else (sampled, no decision, no header) counts as traced: the SDK
    then decides, as it did before it was loaded lazily."""
    fields = os.environ.get("_X_AMZN_TRACE_ID", "").split(";")
    return "Sampled=0" not in (field.strip() for field in fields)


def capture_lambda_handler(handler: Handler) -> Handler:
    """``Tracer().capture_lambda_handler(handler, capture_response=False)``, built on the first
    traced invocation. The response is never recorded: events and responses hold card data."""
    captured: list[Callable[..., Any]] = []
    invoked = False

    @functools.wraps(handler)
    def traced(event: Any, context: Any) -> Any:
        nonlocal invoked
        if not captured:
            if not (tracing_enabled() and invocation_sampled()):
                invoked = True
                return handler(event, context)
            captured.append(_captured(handler, after_untraced=invoked))
        invoked = True
        return captured[0](event, context)

    return cast(Handler, traced)


def _captured(handler: Callable[..., Any], *, after_untraced: bool) -> Callable[..., Any]:
    from aws_lambda_powertools import Tracer
    from aws_lambda_powertools.tracing import tracer as powertools_tracer

    if after_untraced:
        # Powertools annotates the first invocation it sees as the cold start (ColdStart=true);
        # here that is the first traced one, which comes after others when earlier ones were
        # not sampled. The environment is warm by then.
        powertools_tracer.is_cold_start = False
    return Tracer().capture_lambda_handler(handler, capture_response=False)
