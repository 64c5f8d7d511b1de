"""Faults on demand in the local run: make the posting system fail, to watch retries and
dead-letter queues work while the books stay exact (ADR 0021).

A ``FaultPlan`` is parsed from specs ``TARGET:KIND[:first=N|rate=P]`` (``--fault``):

- ``posting:5xx``, ``posting:429``: the posting system answers "not now". Over HTTP the fake
  core system answers 503 / 429 (each request it gets is one chance); on the built-in
  ledger the posting function's calls to the ledger tables get DynamoDB's
  ``InternalServerError`` / ``ThrottlingException`` (each attempt botocore sends is one
  chance, so botocore's own retries see them too);
- ``posting:timeout``: over HTTP the core system books the posting, then answers after the
  posting client's read timeout (its in-call retry, same Idempotency-Key, then hears 409);
  on the ledger, the posting function's invocation times out (each invocation is one
  chance): it is ended, as Lambda ends one with "Task timed out", right after its first write
  to the ledger (or after its work, if it wrote nothing), and what it wrote stays written;
- ``posting:crash-after-write``: the posting function's invocation fails after the
  handler's work (ledger written, events published), before Lambda deletes the messages;
- ``ledger:throttle``: every function's calls to the ledger tables are throttled as
  DynamoDB throttles: ``ProvisionedThroughputExceededException``, or for a
  ``TransactWriteItems`` a ``TransactionCanceledException`` whose reasons are
  ``ThrottlingError`` (which botocore does not retry; the ledger's own loop does).

``first=N`` fails the first N chances, ``rate=P`` each chance with probability P, drawn
from a generator seeded by the plan's seed and the spec (repeatable runs).

Botocore retries as the AWS SDK does (its retry mode, attempts and back-off), but the
back-off is not slept: each retry and the delay it asked for are counted instead.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import botocore.endpoint
import click
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from payment_local.functions import FunctionKilled, LocalFunction
from payment_posting_functions.domain.event_names import EventName

if TYPE_CHECKING:
    from payment_local.runtime import LocalRuntime

POSTING_5XX = "posting:5xx"
POSTING_429 = "posting:429"
POSTING_TIMEOUT = "posting:timeout"
POSTING_CRASH = "posting:crash-after-write"
LEDGER_THROTTLE = "ledger:throttle"
KINDS = (POSTING_5XX, POSTING_429, POSTING_TIMEOUT, POSTING_CRASH, LEDGER_THROTTLE)

# What the posting client's read timeout defaults to when the template does not set it
# (payment_posting_functions.handlers.posting.http_posting_system).
DEFAULT_CLIENT_TIMEOUT_S = 3.0
# How much later than the client's read timeout the slow core system answers.
SLOW_ANSWER_MARGIN_S = 0.3

_SPEC = re.compile(r"^(?P<kind>[a-z0-9-]+:[a-z0-9-]+)(?::(?P<how>first|rate)=(?P<value>[^:]+))?$")


class FaultSpecError(ValueError):
    """A fault spec that cannot be understood; the message says what is accepted."""


@dataclass(frozen=True)
class FaultSpec:
    """One ``--fault``: its kind and how often (the first N chances, or each at a rate)."""

    kind: str
    first: int | None = None
    rate: float | None = None

    def __str__(self) -> str:
        return (
            f"{self.kind}:first={self.first}"
            if self.first is not None
            else (f"{self.kind}:rate={self.rate:g}")
        )


def parse_fault(text: str) -> FaultSpec:
    """``posting:5xx:rate=0.2`` -> FaultSpec; a bad spec raises FaultSpecError."""
    found = _SPEC.match(text.strip())
    usage = (
        f"kinds: {', '.join(KINDS)}; then :first=N (N >= 1) or :rate=P (0 < P <= 1), "
        "e.g. posting:5xx:rate=0.2"
    )
    if found is None:
        raise FaultSpecError(f"bad fault spec {text!r}: expected KIND:first=N or KIND:rate=P; "
                             + usage)  # fmt: skip
    kind, how, value = found["kind"], found["how"], found["value"]
    if kind not in KINDS:
        raise FaultSpecError(f"unknown fault {kind!r} in {text!r}; {usage}")
    if how is None:
        raise FaultSpecError(f"fault {text!r} says not how often; {usage}")
    if how == "first":
        if not value.isdigit() or int(value) < 1:
            raise FaultSpecError(f"first= takes a whole number >= 1, not {value!r} ({text!r})")
        return FaultSpec(kind, first=int(value))
    try:
        rate = float(value)
    except ValueError:
        rate = float("nan")
    if not 0 < rate <= 1:
        raise FaultSpecError(f"rate= takes a number in (0, 1], not {value!r} ({text!r})")
    return FaultSpec(kind, rate=rate)


@dataclass
class _Rule:
    spec: FaultSpec
    draw: random.Random
    chances: int = 0
    injected: int = 0

    def fires(self) -> bool:
        self.chances += 1
        if self.spec.first is not None:
            hit = self.chances <= self.spec.first
        else:
            hit = self.draw.random() < (self.spec.rate or 0.0)
        self.injected += hit
        return hit


@dataclass
class FaultPlan:
    """The faults of a run, which fire when, and what they did (thread-safe: the fake core
    system answers on threads of its own)."""

    specs: Sequence[FaultSpec]
    seed: int = 0
    botocore_retries: int = 0
    backoff_not_slept_s: float = 0.0
    _rules: dict[str, _Rule] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        kinds = Counter(spec.kind for spec in self.specs)
        twice = sorted(kind for kind, n in kinds.items() if n > 1)
        if twice:
            raise FaultSpecError(f"one --fault per kind: {', '.join(twice)} given twice")
        for spec in self.specs:
            self._rules[spec.kind] = _Rule(spec, random.Random(f"{self.seed}:{spec}"))  # noqa: S311 (a draw, not a secret)

    @classmethod
    def parse(cls, texts: Sequence[str], seed: int = 0) -> FaultPlan:
        return cls([parse_fault(text) for text in texts], seed)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def has(self, kind: str) -> bool:
        return kind in self._rules

    def fires(self, kind: str) -> bool:
        """One chance of ``kind``: does it fail (counted either way)?"""
        rule = self._rules.get(kind)
        if rule is None:
            return False
        with self._lock:
            return rule.fires()

    def injected(self) -> dict[str, int]:
        return {kind: rule.injected for kind, rule in self._rules.items()}

    def chances(self) -> dict[str, int]:
        return {kind: rule.chances for kind, rule in self._rules.items()}

    def install(self, runtime: LocalRuntime) -> contextlib.AbstractContextManager[None]:
        """The hooks for ``runtime``'s functions, tables and core system, until exit."""
        return _installed(self, runtime)


# -- the CLI ----------------------------------------------------------------------------


def fault_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--fault`` (repeatable) and ``--fault-seed``, parsed into ``faults: FaultPlan``."""

    def to_plan(context: click.Context, _: click.Parameter, value: Sequence[str]) -> FaultPlan:
        seed = context.params.get("fault_seed", 0)
        try:
            return FaultPlan.parse(value, seed)
        except FaultSpecError as error:
            raise click.BadParameter(str(error)) from None

    function = click.option(
        "--fault", "faults", multiple=True, callback=to_plan, metavar="KIND:first=N|rate=P",
        help="Make the posting system fail (repeatable): posting:5xx, posting:429, "
        "posting:timeout, posting:crash-after-write, ledger:throttle; e.g. "
        "--fault posting:5xx:rate=0.2 --fault posting:timeout:first=5 (README: Injecting "
        "faults).",
    )(function)  # fmt: skip
    return click.option(
        "--fault-seed", type=int, default=0, show_default=True, is_eager=True,
        help="Seed of the faults' rate= draws, for a repeatable run.",
    )(function)  # fmt: skip


# -- the hooks --------------------------------------------------------------------------

# The function whose invocation is running (None: the runtime's own calls).
_running: ContextVar[_Invocation | None] = ContextVar("payments_local_faults", default=None)
_active: _Hooks | None = None


@dataclass
class _Invocation:
    function: LocalFunction
    posting: bool
    times_out: bool = False
    ended: bool = False


@dataclass
class _Hooks:
    plan: FaultPlan
    ledger_tables: frozenset[str]
    posting_functions: frozenset[str]
    # Whether posting:timeout ends the posting function (the built-in ledger) rather than
    # slowing the core system's answer (posting over HTTP).
    function_timeouts: bool

    # LocalFunction.faults: around each invocation of every function.
    def begin(self, function: LocalFunction) -> int | None:
        """Start an invocation; the time left its context reports, if not its timeout."""
        posting = function.name in self.posting_functions
        invocation = _Invocation(function, posting)
        if posting and self.function_timeouts:
            invocation.times_out = self.plan.fires(POSTING_TIMEOUT)
        _running.set(invocation)
        # A timed-out invocation's time is spent, as the runtime makes returned messages
        # visible at once instead of after the visibility timeout (>= the function timeout):
        # the idempotency record it leaves in progress has expired when the message returns.
        return 0 if invocation.times_out else None

    def end(self, function: LocalFunction) -> None:
        """The handler returned: a timeout still due, or a crash, fails it now."""
        invocation = _running.get()
        if invocation is None or not invocation.posting:
            return
        if invocation.times_out:
            raise _timed_out(function)
        if self.plan.fires(POSTING_CRASH):
            raise FunctionKilled(
                "Runtime.ExitError", "Runtime exited with error: signal: killed (injected crash)"
            )

    def close(self) -> None:
        """The invocation is over, however it ended."""
        _running.set(None)

    # BotocoreStubber.__call__: every request moto would serve.
    def request(self, request: Any, serve: Callable[[], AWSResponse | None]) -> Any:
        invocation = _running.get()
        tables = _tables(request) if invocation is not None else set()
        if invocation is None or not tables & self.ledger_tables:
            return serve()
        operation = _header(request, "X-Amz-Target").rpartition(".")[2]
        if self.plan.fires(LEDGER_THROTTLE):
            if operation == "TransactWriteItems":
                return _throttled_transaction(request)
            return _error(request, 400, "ProvisionedThroughputExceededException",
                          "The level of configured provisioned throughput for the table was "
                          "exceeded (injected)")  # fmt: skip
        if invocation.posting and self.plan.fires(POSTING_5XX):
            return _error(request, 500, "InternalServerError", "Internal server error (injected)")
        if invocation.posting and self.plan.fires(POSTING_429):
            return _error(request, 400, "ThrottlingException", "Rate exceeded (injected)",
                          "com.amazon.coral.availability#")  # fmt: skip
        response = serve()
        if invocation.times_out and not invocation.ended and operation == "TransactWriteItems":
            # The write is applied; the answer never comes before the function's time is up.
            invocation.ended = True
            raise _timed_out(invocation.function)
        return response


def _timed_out(function: LocalFunction) -> FunctionKilled:
    return FunctionKilled(
        "Sandbox.Timedout", f"Task timed out after {function.timeout_seconds:.2f} seconds"
    )


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name)
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _tables(request: Any) -> set[str]:
    """The DynamoDB tables a request names (none for other services)."""
    if not _header(request, "X-Amz-Target").startswith("DynamoDB_"):
        return set()
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return set()
    names = {body["TableName"]} if isinstance(body.get("TableName"), str) else set()
    names |= set(body.get("RequestItems") or {})
    for item in body.get("TransactItems") or []:
        for action in item.values():
            if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                names.add(action["TableName"])
    return names


def _error(
    request: Any, status: int, code: str, message: str,
    namespace: str = "com.amazonaws.dynamodb.v20120810#", **extra: Any,
) -> AWSResponse:  # fmt: skip
    body = json.dumps({"__type": f"{namespace}{code}", "message": message, **extra}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
    return AWSResponse(request.url, status, headers, MockRawResponse(body))


def _throttled_transaction(request: Any) -> AWSResponse:
    items = json.loads(request.body or b"{}").get("TransactItems") or []
    reasons = [{"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity "
                "of your table or index (injected)"} for _ in items]  # fmt: skip
    codes = ", ".join(r["Code"] for r in reasons)
    return _error(request, 400, "TransactionCanceledException",
                  f"Transaction cancelled, please refer cancellation reasons for specific "
                  f"reasons [{codes}]", CancellationReasons=reasons)  # fmt: skip


class _CountedSleep:
    """botocore.endpoint's ``time``: a retry's back-off is counted, not slept."""

    def __init__(self, plan: FaultPlan, real: ModuleType) -> None:
        self._plan = plan
        self._real = real

    def sleep(self, seconds: float) -> None:
        with self._plan._lock:
            self._plan.botocore_retries += 1
            self._plan.backoff_not_slept_s += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def _installed(plan: FaultPlan, runtime: LocalRuntime) -> Iterator[None]:
    global _active
    functions = list(runtime.topology.functions.values())
    posting = [f for f in functions if "POSTING_SYSTEM" in f.environment]
    ledger_tables = frozenset(
        value for f in functions for name, value in f.environment.items()
        if name in ("LEDGER_JOURNAL_TABLE_NAME", "LEDGER_BALANCES_TABLE_NAME")
    )  # fmt: skip
    if plan.has(LEDGER_THROTTLE) and not ledger_tables:
        raise FaultSpecError("ledger:throttle: this stack has no built-in ledger (it posts over "
                             "HTTP); use posting:429")  # fmt: skip
    if any(plan.has(k) for k in KINDS if k.startswith("posting:")) and not posting:
        raise FaultSpecError("posting faults: this stack has no posting function")
    server = runtime.core_banking
    hooks = _Hooks(plan, ledger_tables, frozenset(f.name for f in posting), server is None)
    for function in functions:
        function.faults = hooks
    if server is not None:
        timeout = (
            float(
                posting[0].environment.get("CORE_BANKING_TIMEOUT_SECONDS", DEFAULT_CLIENT_TIMEOUT_S)
            )
            if posting
            else 0
        )
        server.state.faults = _CoreSystemFaults(plan, timeout + SLOW_ANSWER_MARGIN_S)
    original_call = BotocoreStubber.__call__

    def call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if not self.enabled or _active is None:
            return original_call(self, event_name, request, **kwargs)
        return _active.request(request, lambda: original_call(self, event_name, request, **kwargs))

    endpoint: Any = botocore.endpoint
    real_time = endpoint.time
    stubber: Any = BotocoreStubber
    stubber.__call__ = call
    endpoint.time = _CountedSleep(plan, real_time)
    _active = hooks
    try:
        yield
    finally:
        _active = None
        stubber.__call__ = original_call
        endpoint.time = real_time
        for function in functions:
            function.faults = None
        if server is not None:
            server.state.faults = None


@dataclass
class _CoreSystemFaults:
    """What the fake core system does to a posting request (``core_banking``)."""

    plan: FaultPlan
    slow_answer_s: float

    def status(self) -> int | None:
        """An answer instead of the posting (503 or 429), or None."""
        if self.plan.fires(POSTING_5XX):
            return 503
        if self.plan.fires(POSTING_429):
            return 429
        return None

    def delay(self) -> float:
        """How long to wait before answering a posting already booked (0: at once)."""
        return self.slow_answer_s if self.plan.fires(POSTING_TIMEOUT) else 0.0


# -- the summary ------------------------------------------------------------------------

# The posting system's outcome events: one per posting, the same each time it is answered.
OUTCOME_EVENTS = frozenset(
    {EventName.TRANSACTION_POSTED, EventName.AUTHORIZATION_HELD, EventName.CLEARING_MATCHED,
     EventName.REVERSAL_APPLIED, EventName.POSTING_FAILED}
)  # fmt: skip


def fault_summary(
    runtime: LocalRuntime, dead_letter_depths: dict[str, int], written: set[str]
) -> dict[str, Any]:
    """What the faults did (docs/report-format.md, ``faults``): injected by kind, the
    retries they caused, what reached a dead-letter queue, and whether the posting stayed
    exactly once."""
    plan = runtime.faults
    sources = runtime.topology.event_sources
    outcomes: dict[str, set[str]] = {}
    repeated: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for event in runtime.event_log.events:
        tx = event.transaction_id
        if tx is None or tx not in written:
            continue
        identity = (event.detail_type, json.dumps(event.detail, sort_keys=True))
        if identity in seen:
            repeated[event.detail_type] += 1
        seen.add(identity)
        if event.detail_type in OUTCOME_EVENTS:
            same = {k: v for k, v in event.detail.items() if k != "postingStatus"}
            outcomes.setdefault(tx, set()).add(event.detail_type + json.dumps(same, sort_keys=True))
    dead_lettered = _dead_lettered(runtime, dead_letter_depths)
    return {
        "seed": plan.seed,
        "specs": [str(spec) for spec in plan.specs],
        "chances": plan.chances(),
        "injected": plan.injected(),
        "retries": {
            "receivesBeyondFirst": sum(s.stats.redeliveries for s in sources),
            "messagesReturned": sum(s.stats.messages_returned for s in sources),
            "functionErrors": {
                f.logical_id: f.errors for f in runtime.topology.functions.values() if f.errors
            },
            "botocoreRetries": plan.botocore_retries,
            "backoffNotSleptSeconds": round(plan.backoff_not_slept_s, 3),
        },
        "deadLetterArrivals": {q: n for q, n in dead_letter_depths.items() if n},
        "deadLettered": sorted(dead_lettered & written),
        "repeatedEvents": dict(repeated.most_common()),
        "differentOutcomes": sorted(tx for tx, answers in outcomes.items() if len(answers) > 1),
        "transfersBookedTwice": _booked_twice(runtime),
    }


def _dead_lettered(runtime: LocalRuntime, depths: dict[str, int]) -> set[str]:
    """The transactions whose message waits in a dead-letter queue. Each message is
    received and made visible again at once: it stays for the redrive (its receive count
    in the dead-letter queue goes up by one)."""
    found: set[str] = set()
    sqs = runtime.clients.sqs
    for logical_id, depth in depths.items():
        url = runtime.topology.queues.get(logical_id)
        if not depth or url is None:
            continue
        held: list[dict[str, Any]] = []
        while True:
            received = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not received:
                break
            held += received
        for message in held:
            try:
                detail = json.loads(message["Body"]).get("detail") or {}
            except (ValueError, AttributeError):
                continue
            if isinstance(detail, dict) and isinstance(detail.get("transactionId"), str):
                found.add(detail["transactionId"])
        for start in range(0, len(held), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(held[start : start + 10])
                ],
            )
    return found


def _booked_twice(runtime: LocalRuntime) -> list[str]:
    """Transfers of the built-in ledger with more than their two entries (one per side)."""
    from payment_local.ledger_view import entries, ledger_of

    if ledger_of(runtime) is None:
        return []
    sides: Counter[str] = Counter(entry.transfer_id for entry in entries(runtime))
    return sorted(transfer for transfer, n in sides.items() if n > 2)


def fault_lines(faults: dict[str, Any] | None) -> list[str]:
    """The report's text for ``faults``."""
    if not faults:
        return []
    retries = faults["retries"]
    errors = ", ".join(f"{f} {n}" for f, n in retries["functionErrors"].items()) or "none"
    twice = faults["transfersBookedTwice"]
    differ = faults["differentOutcomes"]
    return [
        f"Faults injected        {sum(faults['injected'].values()):>7}   (seed {faults['seed']})",
        *(
            f"  {kind:<27}{n:>7}   of {faults['chances'][kind]} chances"
            for kind, n in faults["injected"].items()
        ),
        f"  retries: receives beyond the first {retries['receivesBeyondFirst']}, messages "
        f"returned {retries['messagesReturned']}, botocore retries {retries['botocoreRetries']} "
        f"(back-off {retries['backoffNotSleptSeconds']:.2f} s counted, not slept)",
        f"  function errors: {errors}",
        "  dead-letter arrivals: "
        + (", ".join(f"{q} {n}" for q, n in faults["deadLetterArrivals"].items()) or "none")
        + (
            f"   ({len(faults['deadLettered'])} transactions wait there for a redrive, e.g. "
            f"{', '.join(faults['deadLettered'][:3])})"
            if faults["deadLettered"]
            else ""
        ),
        "  events seen again (identical): "
        + (", ".join(f"{t} {n}" for t, n in faults["repeatedEvents"].items()) or "none"),
        f"  exactly once: {'ok' if not twice and not differ else 'FAILED'}   (transfers booked "
        f"twice {len(twice)}; transactions answered differently {len(differ)})",
    ]


def fault_problems(faults: dict[str, Any] | None) -> list[str]:
    """Why the faults section fails the run: something posted twice or answered two ways."""
    if not faults:
        return []
    problems = []
    if faults["transfersBookedTwice"]:
        problems.append(
            f"{len(faults['transfersBookedTwice'])} ledger transfers booked twice, e.g. "
            + ", ".join(faults["transfersBookedTwice"][:3])
        )
    if faults["differentOutcomes"]:
        problems.append(
            f"{len(faults['differentOutcomes'])} transactions got different outcomes on "
            "redelivery, e.g. " + ", ".join(faults["differentOutcomes"][:3])
        )
    return problems
