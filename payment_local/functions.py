"""Lambda functions run in this process, with the environment the template gives them.

The handler is the one the template names, from the asset it names; ``check_fresh`` has
already made sure that asset is byte-for-byte the code this process imports.

Layers: Lambda extracts a function's layers under ``/opt``, in order, a later one's file
over an earlier one's. This process cannot write ``/opt``, so it stands in for that where
the function is told of a file there: an environment value that is a path under ``/opt/``
names the same file in the staged layer asset instead (the last layer holding it wins). The
handler reads the path it is given, as on AWS; a path no layer holds stays as it is and
fails to open as it would there.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TextIO

import boto3

from payment_local.access.authorizer import Credentials
from payment_local.access.botocore_hook import running_function
from payment_local.access.policy import Caller
from payment_local.function_logs import function_output
from payment_local.network import FunctionNetwork, running_network
from payment_posting_functions.domain.pan import redact_card_numbers

# Locally, tracing has no daemon to talk to and EMF metrics would only be printed.
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


class FunctionError(Exception):
    """A function invocation failed, reported the way Lambda reports it."""

    def __init__(self, function_name: str, error_type: str, message: str) -> None:
        super().__init__(f"{function_name}: {error_type}: {message}")
        self.function_name = function_name
        self.error_type = error_type
        self.error_message = message


class FunctionKilled(BaseException):
    """The invocation was ended from outside (a timeout, a crash: ``payment_local.faults``).

    A BaseException, so no ``except Exception`` of the handler's runs, as none runs in a
    process Lambda stops: an idempotency record in progress stays in progress.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message


class InvocationFaults(Protocol):
    """What fault injection does around an invocation (``payment_local.faults``)."""

    def begin(self, function: LocalFunction) -> int | None:
        """An invocation starts; returns the time left its context reports, if not the
        function's timeout."""

    def end(self, function: LocalFunction) -> None:
        """The handler returned; may raise FunctionKilled (it failed after its work)."""

    def close(self) -> None:
        """The invocation is over, however it ended."""


@dataclass
class _Context:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_ms: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass
class LocalFunction:
    """One ``AWS::Lambda::Function`` of the template."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_path: Path
    environment: dict[str, str]
    timeout_seconds: int = 3
    memory_mb: int = 128
    log: TextIO | None = None
    log_level: str = "TRACE"  # the lowest level its log keeps (function_logs)
    role_arn: str | None = None
    layers: list[Path] = field(default_factory=list)  # staged layer contents, in order
    network: FunctionNetwork | None = None  # its VPC placement, checked on every connection
    invocations: int = 0
    errors: int = 0
    faults: InvocationFaults | None = None
    _entry: Callable[[Any, Any], Any] | None = field(default=None, repr=False)
    _caller: Caller | None = field(default=None, repr=False)
    _credentials: Credentials | None = field(default=None, repr=False)
    _session: boto3.session.Session | None = field(default=None, repr=False)

    def run_as(self, caller: Caller, credentials: Credentials) -> None:
        """Run as ``caller``: its credentials in the environment, as Lambda puts them there."""
        self._caller = caller
        self._credentials = credentials
        self._session = None

    def invoke(self, payload: Any) -> Any:
        """Invoke synchronously; raise FunctionError as Lambda would report one."""
        self.invocations += 1
        event = json.loads(json.dumps(payload))  # what crosses the wire is JSON
        context = _Context(self.name, self.arn, self.memory_mb, self.timeout_seconds * 1000)
        with self._environment(), warnings.catch_warnings():
            # Metrics are disabled locally; Powertools then warns that none were published.
            warnings.filterwarnings("ignore", "No application metrics to publish")
            handler = self._handler()  # a stale handler is the operator's error, not the function's
            faults = self.faults
            try:
                if faults is not None:
                    left = faults.begin(self)
                    context.timeout_ms = context.timeout_ms if left is None else left
                result = handler(event, context)
                if faults is not None:
                    faults.end(self)
                return json.loads(json.dumps(result))
            except FunctionKilled as killed:
                self.errors += 1
                raise FunctionError(self.name, killed.error_type, killed.error_message) from None
            except Exception as error:  # the function's failure, reported, not raised as is
                self.errors += 1
                message = redact_card_numbers(str(error))[:1000]
                raise FunctionError(self.name, type(error).__name__, message) from error
            finally:
                if faults is not None:
                    faults.close()

    def _handler(self) -> Callable[[Any, Any], Any]:
        if self._entry is None:
            module_name, _, function_name = self.handler.rpartition(".")
            module = importlib.import_module(module_name)
            staged = self.code_path / Path(*module_name.split(".")).with_suffix(".py")
            imported = Path(module.__file__) if module.__file__ else None
            if imported and staged.is_file() and imported.read_bytes() != staged.read_bytes():
                raise RuntimeError(
                    f"{self.handler} imported from {imported} is not the synthesized "
                    f"{staged}; run `make synth`"
                )
            self._entry = getattr(module, function_name)
        return self._entry

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(
            {
                **layer_paths(self.environment, self.layers),
                **LOCAL_ENVIRONMENT,
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
                # Set by Lambda when a level is configured; Powertools' logger follows it.
                **({"AWS_LAMBDA_LOG_LEVEL": self.log_level} if self.log_level != "TRACE" else {}),
                **self._credential_variables(),
            }
        )
        # Each function has its own default session, as it has its own process on Lambda:
        # a shared one would hand every function the credentials it resolved first.
        saved_session = boto3.DEFAULT_SESSION
        if self._credentials is not None:
            if self._session is None:
                self._session = boto3.session.Session()
            boto3.DEFAULT_SESSION = self._session
        running = running_function.set(self._caller)
        placed = running_network.set(self.network)
        try:
            if self.log is not None:
                with function_output(self.log, self.log_level):
                    yield
            else:
                yield
        finally:
            running_network.reset(placed)
            running_function.reset(running)
            boto3.DEFAULT_SESSION = saved_session
            os.environ.clear()
            os.environ.update(saved)

    def _credential_variables(self) -> dict[str, str]:
        if self._credentials is None:
            return {}
        return {
            "AWS_ACCESS_KEY_ID": self._credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self._credentials.secret_key,
            "AWS_SESSION_TOKEN": self._credentials.session_token,
        }


LAYERS_ROOT = PurePosixPath("/opt")


def layer_paths(environment: dict[str, str], layers: list[Path]) -> dict[str, str]:
    """``environment`` with each value naming a file under /opt pointed at that file in the
    staged layers (the last layer holding it, as Lambda overlays them)."""
    resolved = dict(environment)
    for name, value in environment.items():
        path = PurePosixPath(value)
        if not value.startswith(f"{LAYERS_ROOT}/") or ".." in path.parts:
            continue
        relative = path.relative_to(LAYERS_ROOT)
        for layer in reversed(layers):
            candidate = layer.joinpath(*relative.parts)
            if candidate.is_file():
                resolved[name] = str(candidate)
                break
    return resolved


def cold_start(functions: Iterable[LocalFunction]) -> None:
    """Forget what the handler modules cached from an earlier run's environment.

    On Lambda a new deployment runs in new execution environments, so a handler's
    module-level caches (clients, table and bus names, adapters: ``functools.cache``) start
    empty. Here one process runs stack after stack, and the modules stay imported (their code
    is what was synthesized: ``check_fresh``), so their caches are cleared instead, as each
    runtime starts; otherwise a second stack would post to the first one's table.
    """
    packages = {function.handler.rsplit(".", 2)[0] for function in functions}
    for name, module in list(sys.modules.items()):
        if name.rpartition(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()
