"""Every place the local runtime reaches past moto's public API. Pinned to the moto version.

What moto cannot do for this runtime, and what it does too slowly (each measured):

- a patch: Step Functions executions run synchronously inside ``StartExecution``. moto runs
  each in threads of its own, and moto is not thread-safe; run inline, an execution's
  ``events:putEvents`` and ``lambda:invoke`` tasks happen while the runtime waits, and
  ``run_until_idle()`` stays deterministic. (A Task state still runs in a thread moto starts
  to time it out, but the execution waits for it, so nothing runs concurrently.);
- a patch: a definition is parsed and preprocessed once and the program reused; moto does
  both again for every execution (about 45 ms of an 80 ms execution of our workflow);
- a patch: ``lambda:invoke`` (from a Step Functions task, or any client) runs the template's
  handler in process. moto's Docker-free Lambda only echoes the payload back;

- a patch: moto parses JSONPath expressions with a PLY parser built from scratch for each
  one: eight per event delivered to an SQS rule target (about 9 ms per event), and one per
  path a Step Functions state reads. Parsed expressions are immutable, so caching the parse
  changes nothing but the speed;
- a patch: on every message received, moto checks the retention period by computing all the
  queue's attributes three times over, message counts included, so a receive costs grows with
  the queue's depth (about 3 ms per message at a depth of a few hundred). The check now reads
  the one attribute it needs; the result is the same;
- a patch: ``TransactWriteItems`` rolls back with an undo log of the items it names instead of
  deep copies of whole tables (a ledger posting copied the whole ledger table five times, so
  posting slowed down, and memory grew, with every posting);
- a patch: moto turns each request's action name, and each of a queue's attribute names
  every time it lists them (on every ``SendMessage``), from CamelCase into snake_case
  character by character, and lists a response class's methods with ``inspect.getmembers``
  on every request (together about 5 % of a local run). Both are pure functions of their
  argument (a string; a class whose methods do not change once moto is loaded), so their
  results are cached; the results are the same;
- a patch: Step Functions tasks call AWS with clients moto creates with fixed dummy
  credentials; they now carry the credentials of the execution's role (when the runtime
  provides them), so the local access check authorizes a task as the state machine's role;
- a read: AWS managed policy documents, from the copy moto ships for its IAM;
- a read: the pipe poller takes stream records from moto's DynamoDB Streams backend rather than
  through ``GetRecords``, whose response moto serializes field by field (about 7 ms per record
  with the transaction images, more than the rest of the record's journey).

- a filter: moto's Step Functions interpreter logs an error line for every ``IsPresent``
  check that finds its path missing, before answering false; those lines are dropped.

Functions under test keep using boto3 against moto as they would use AWS.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import jsonpath_ng.ext
import moto
from botocore.config import Config
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import utils as moto_utils
from moto.core.utils import unix_time
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.sqs.models import Message, SQSBackend
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend import execution_worker

PINNED_MOTO_VERSION = "5.2.5"
_patched = False


class MotoVersionError(RuntimeError):
    """moto is not the version this module was written and tested against."""


def check_version() -> None:
    if moto.__version__ != PINNED_MOTO_VERSION:
        raise MotoVersionError(
            f"payment_local.moto_internals is written for moto {PINNED_MOTO_VERSION}, found "
            f"{moto.__version__}: re-check this module and its tests, then update the pin"
        )


def apply_patches() -> None:
    """Apply every patch once; refuse another moto version rather than patch it blindly."""
    global _patched
    check_version()
    if _patched:
        return
    # moto.events.utils imports `parse` from jsonpath_ng.ext inside the function, on every
    # call, so replacing the module attribute reaches it.
    jsonpath_ext: Any = jsonpath_ng.ext
    cached_parse = functools.lru_cache(maxsize=4096)(jsonpath_ext.parse)
    jsonpath_ext.parse = cached_parse
    # The Step Functions interpreter bound `parse` at import: reach its copy too.
    step_functions_json_path: Any = json_path
    step_functions_json_path.parse = cached_parse
    backend_class: Any = SQSBackend
    backend_class.is_message_valid_based_on_retention_period = _within_retention
    worker: Any = execution_worker.ExecutionWorker
    worker.start = execution_worker.SyncExecutionWorker.start
    program_class: Any = Program
    program_class.eval = _eval_program_inline
    parser: Any = asl_parser.AmazonStateLanguageParser
    parser.parse = staticmethod(_parse_with_cached_tree(parser.parse))
    lambda_backend: Any = LambdaSimpleBackend
    lambda_backend.invoke = _invoke_in_process(lambda_backend.invoke)
    dynamodb_backend: Any = DynamoDBBackend
    dynamodb_backend.transact_write_items = _undo_log_instead_of_snapshots(
        dynamodb_backend.transact_write_items
    )
    _cache_pure_helpers()
    logging.getLogger(_EVAL_COMPONENT_LOGGER).addFilter(_quiet_missing_paths)
    for name in _TASK_CLIENT_MODULES:
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and hasattr(module, "boto_client_for"):
            module_any: Any = module
            module_any.boto_client_for = _as_execution_role(module_any.boto_client_for)
    _patched = True


_EVAL_COMPONENT_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"


def _quiet_missing_paths(record: logging.LogRecord) -> bool:
    """Drop moto's error line for a path an ``IsPresent`` check finds missing: the interpreter
    logs it before the check catches it and answers false (the workflow's replay check does
    this for every event not replayed). A missing path that fails an execution still fails
    it, and the execution's history says so."""
    return not record.getMessage().startswith("Exception=NoSuchJsonPathError")


def _cache_pure_helpers() -> None:
    """Cache ``camelcase_to_underscores`` and ``method_names_from_class`` wherever moto's
    loaded modules bound them (``from moto.core.utils import ...``)."""
    # The originals, bound before moto.core.utils' own names are replaced below too.
    to_snake_case = moto_utils.camelcase_to_underscores
    list_methods = moto_utils.method_names_from_class
    snake_case = functools.lru_cache(maxsize=4096)(to_snake_case)
    names_of = functools.lru_cache(maxsize=1024)(lambda clazz: tuple(list_methods(clazz)))

    def method_names_from_class(clazz: object) -> list[str]:
        return list(names_of(clazz))  # a list of its own: a caller may change it

    replacements = {to_snake_case: snake_case, list_methods: method_names_from_class}
    for name, module in list(sys.modules.items()):
        if name == "moto" or name.startswith("moto."):
            for attribute, value in list(vars(module).items()):
                replacement = replacements.get(value) if callable(value) else None
                if replacement is not None:
                    setattr(module, attribute, replacement)


# The modules whose tasks create clients with moto's boto_client_for (imported before the
# patch, so that each one's own reference to it is replaced).
_TASK_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
)  # fmt: skip
# The roles of the executions running, innermost last. Not a ContextVar: moto runs each Task
# state in a thread of its own (which would not see the context), while the execution waits.
_execution_roles: list[str] = []
# role ARN -> (access key, secret key, session token), set by the runtime while it runs.
RoleCredentials = Callable[[str], tuple[str, str, str] | None]
_role_credentials: RoleCredentials | None = None
_task_clients: dict[tuple[str, str, str], Any] = {}


def set_role_credentials(provider: RoleCredentials | None) -> None:
    """How a Step Functions task gets the credentials of its execution's role (None: moto's)."""
    global _role_credentials
    _role_credentials = provider
    _task_clients.clear()


def _as_execution_role(original: Callable[..., Any]) -> Callable[..., Any]:
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role = _execution_roles[-1] if _execution_roles else None
        credentials = _role_credentials(role) if role and _role_credentials else None
        if credentials is None:
            return original(region, service, state_credentials)
        key = (role or "", region, service)
        if key not in _task_clients:
            access_key, secret_key, token = credentials
            # moto's own settings for task clients: no validation, no retries.
            _task_clients[key] = boto3.session.Session().client(
                service, region_name=region, aws_access_key_id=access_key,
                aws_secret_access_key=secret_key, aws_session_token=token,
                config=Config(parameter_validation=False,
                              retries={"max_attempts": 0, "total_max_attempts": 1}),
            )  # fmt: skip
        return _task_clients[key]

    return boto_client_for


class _TablesAreNotCopied:
    """Stands in for the ``copy`` module inside one TransactWriteItems call."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        # The rollback snapshot of a whole table becomes the live table (restoring it is then
        # a no-op); the undo log below restores the few items the transaction touched.
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _undo_log_instead_of_snapshots(original: Callable[..., Any]) -> Callable[..., Any]:
    # moto snapshots a whole table for rollback once per item that names it: a ledger posting
    # (five items on one table) deep-copied the whole ledger table five times, so each posting
    # cost more than the one before. The same rollback is kept by remembering only the items
    # the transaction names, and putting them back if it is cancelled.
    models: Any = dynamodb_models

    def transact_write_items(backend: Any, transact_items: Any) -> Any:
        try:
            priors = [_prior_state(backend, item) for item in transact_items]
        except Exception:
            return original(backend, transact_items)  # let moto report a malformed request
        models.copy = _TablesAreNotCopied()
        try:
            return original(backend, transact_items)
        except Exception:
            for prior in reversed(priors):
                if prior is not None:
                    _restore(backend, *prior)
            raise
        finally:
            models.copy = copy

    return transact_write_items


def _prior_state(backend: Any, item: dict[str, Any]) -> tuple[str, Any, Any] | None:
    op_type, op = next(iter(item.items()))
    if op_type not in ("Put", "Update", "Delete"):
        return None
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        names = [table.hash_key_attr, table.range_key_attr]
        key = {name: op["Item"][name] for name in names if name is not None}
    else:
        key = op["Key"]
    current = backend.get_item(op["TableName"], key)
    return op["TableName"], key, current.to_json()["Attributes"] if current else None


def _restore(backend: Any, table_name: str, key: Any, attributes: Any) -> None:
    if attributes is not None:
        backend.put_item(table_name, attributes)
    elif backend.get_item(table_name, key) is not None:
        backend.delete_item(table_name, key)


def _eval_program_inline(program: Any, env: Any) -> None:
    # moto evaluates each program in one more thread, only to enforce TimeoutSeconds by
    # joining it; locally timeouts are not enforced (see the runtime's documentation).
    env.next_state_name = program.start_at.start_at_name
    _execution_roles.append(env.aws_execution_details.role_arn)
    try:
        super(Program, program).eval(env)
    finally:
        _execution_roles.pop()


def _parse_with_cached_tree(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """Parse and preprocess each definition once; reuse the program for every execution.

    The evaluation components keep no execution state (it lives in each execution's
    Environment); tests run every branch of our workflow in turn on one program to hold
    that true for the states we use.
    """
    programs: dict[str, Any] = {}  # definition -> (program, antlr parse tree)

    def parse(definition: str) -> Any:
        if definition not in programs:
            programs[definition] = original(definition)
        return programs[definition]

    return parse


# (account, region) -> function name or ARN -> invoke(payload) -> result; see register_function
_functions: dict[tuple[str, str], dict[str, Any]] = {}


class InvocationError(Exception):
    """Raised by a registered function to report an error the way Lambda does."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def register_function(
    account: str, region: str, names: list[str], invoke: Callable[[Any], Any]
) -> None:
    """Make ``lambda:invoke`` of any of ``names`` call ``invoke`` in process."""
    registry = _functions.setdefault((account, region), {})
    for name in names:
        registry[name] = invoke


def clear_functions() -> None:
    _functions.clear()


def _invoke_in_process(original: Callable[..., Any]) -> Callable[..., Any]:
    def invoke(
        backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes | None:
        function = _functions.get((backend.account_id, backend.region_name), {}).get(function_name)
        if function is None:
            echoed: bytes | None = original(
                backend, function_name, qualifier, body, headers, response_headers
            )
            return echoed
        payload = json.loads(body) if body else {}
        try:
            return json.dumps(function(payload)).encode()
        except InvocationError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": error.error_type, "errorMessage": str(error)}).encode()

    return invoke


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    queue: Any = backend.get_queue(queue_name)
    sent_ms: Any = message.sent_timestamp
    return bool(queue.message_retention_period + sent_ms / 1000 > unix_time())


def get_stream_records(
    account: str, region: str, shard_iterator: str, limit: int
) -> tuple[str, list[dict[str, Any]]]:
    """(next iterator, records) as ``GetRecords`` would return them, records copied.

    ``ApproximateCreationDateTime`` becomes epoch seconds, as Lambda and Pipes deliver it.
    """
    check_version()
    backend = dynamodbstreams_backends[account][region]
    result = backend.get_records(shard_iterator, limit)
    records = []
    for stored in result["Records"]:
        record = copy.deepcopy(stored)  # moto keeps these; the pipe adds fields to its copy
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            aware = created if created.tzinfo else created.replace(tzinfo=UTC)
            record["dynamodb"]["ApproximateCreationDateTime"] = aware.timestamp()
        record["awsRegion"] = region
        records.append(record)
    return result["NextShardIterator"], records


def aws_managed_policy(arn: str) -> dict[str, Any] | None:
    """The document of an AWS managed policy (``arn:aws:iam::aws:policy/...``), from the copy
    moto ships, or None if it is not one moto knows."""
    if ":iam::aws:policy/" not in arn:
        return None
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    policies: dict[str, Any] = _managed_policies(aws_managed_policies_data)
    entry = policies.get(arn.rsplit("/", 1)[-1])
    return entry["Document"] if entry else None


@functools.lru_cache(maxsize=1)
def _managed_policies(data: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(data)
    return parsed
