"""The point where every SDK call of this process is authorized before moto serves it.

Two botocore events, registered for every session (as moto registers its own stub):
``before-parameter-build`` keeps the call's parameters, and ``before-call`` decides. A refused
call never reaches moto: botocore gets the error response AWS would send and raises it as
the service's own exception (``AccessDeniedException``, ``AccessDenied``,
``AuthorizationError``), so retries, partial batch failures and dead-letter queues take over.

The caller is whoever the request's credentials identify. The runtime's own credentials
(its plumbing, and the demo's stand-in for the authorization system that writes
transactions) are not checked. While a function runs, credentials that identify nobody are
that function's (a client its module cached before this run). Any other credentials are
refused: a call the check cannot attribute must not pass unchecked.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS

from payment_local.access.authorizer import Authorizer
from payment_local.access.calls import checks_for_call
from payment_local.access.policy import Caller

_PARAMS_KEY = "payments_local.api_params"
# The error each service answers a refused call with, and its HTTP status.
_ERRORS = {
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "lambda": ("AccessDeniedException", 403),
}
_DEFAULT_ERROR = ("AccessDeniedException", 400)

_active: Authorizer | None = None
running_function: ContextVar[Caller | None] = ContextVar("running_function", default=None)
_installed = False


def install() -> None:
    """Register the hooks for every botocore session created from now on (idempotent)."""
    global _installed
    if not _installed:
        BUILTIN_HANDLERS.append(("before-parameter-build", _remember_params))
        BUILTIN_HANDLERS.append(("before-call", _authorize))
        _installed = True


def activate(authorizer: Authorizer | None) -> None:
    """Authorize calls with ``authorizer`` from now on (None: stop checking)."""
    global _active
    _active = authorizer


def _remember_params(params: Any, context: dict[str, Any], **_: Any) -> None:
    if _active is not None:
        context[_PARAMS_KEY] = params


def _authorize(
    model: Any, params: Any, request_signer: Any, context: dict[str, Any], **_: Any
) -> tuple[AWSResponse, dict[str, Any]] | None:
    authorizer = _active
    if authorizer is None or not authorizer.enforce:
        return None
    started = time.perf_counter()
    access_key = _access_key(request_signer)
    caller = authorizer.caller_for(access_key) or running_function.get()
    if caller is None:
        if access_key in authorizer.plumbing_keys:
            return None  # the runtime's own plumbing: not a template principal
        caller = Caller("unidentified", f"unidentified credentials {access_key}", "")
    prefix = model.service_model.signing_name
    checks = checks_for_call(authorizer.model, prefix, model.name, context.get(_PARAMS_KEY, {}))
    authorizer.seconds += time.perf_counter() - started  # check() counts its own time
    denied = authorizer.check(caller, checks)
    if denied is None:
        return None
    code, status = _ERRORS.get(prefix, _DEFAULT_ERROR)
    request_id = str(uuid.uuid4())
    response = AWSResponse("https://local.invalid/", status, HTTPHeaders(), None)
    parsed = {
        "Error": {"Code": code, "Message": str(denied), "Type": "Sender"},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }
    return response, parsed


def _access_key(request_signer: Any) -> str | None:
    try:
        auth = request_signer.get_auth_instance(
            request_signer.signing_name, request_signer.region_name, "v4"
        )
    except Exception:  # an unsigned client: no credentials to identify anyone
        return None
    credentials = getattr(auth, "credentials", None)
    return getattr(credentials, "access_key", None)
