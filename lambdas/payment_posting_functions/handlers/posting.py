"""Posting function: approved transactions from the buffer queue into the posting system.

Reads SQS batches with partial batch failures: a transaction that fails for a reason that
may pass (throttling, a timeout, the core system down) goes back to the queue alone and is
retried, then lands in the dead-letter queue after the queue's maxReceiveCount; one the
posting system refuses for good ends ``PostingFailed``; the rest end ``TransactionPosted``.

Exactly-once effect: the queue and Express workflow deliver at least once, so posting is
idempotent twice over, by the posting system itself (keyed by transaction id) and by
Powertools idempotency around each record's posting, whose saved response carries the
outcome's event. The same transaction id approved again with another amount, direction or
account is not a repeat: the idempotency record's payload hash refuses it, and the posting
system, asked without the record, refuses it as a conflict (``PostingFailed``).

The batch's events go out together at the end, ten to a PutEvents call, and a message leaves
the queue only once its event is on the bus: a record whose event the bus refused is reported
failed, and its redelivery is answered from the idempotency record (nothing posted again) and
publishes the saved event again. Events are therefore at least once, identical when repeated.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.config import IdempotencyConfig

from payment_posting_functions.domain.client_certificate import ClientCertificate
from payment_posting_functions.domain.event_names import EventSource
from payment_posting_functions.domain.latency import milliseconds_since
from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.handlers.tracing import capture_lambda_handler

# The domain (its pydantic models), the posting systems and Powertools' batch and idempotency
# machinery are imported where they are used, on the first invocation, not here:
# docs/adr/0024-lazy-imports-on-the-payment-path.md.
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from payment_posting_functions.domain.events import LifecycleEvent, TransactionApproved
    from payment_posting_functions.domain.posting import (
        PostingRequest,
        PostingResult,
        PostingSystem,
    )
    from payment_posting_functions.domain.posting_instructions import LifecycleSettings
    from payment_posting_functions.domain.publisher import Entry, EventPublisher

logger = payment_logger()
metrics = Metrics()


@cache
def batch_processor() -> BatchProcessor:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS)


# What a posting is made of (posting_instructions.posting_request_for): the same transaction
# id with any of these different is another posting, not a repeat to answer from the record.
POSTING_CONTENT = (
    "[transaction.billingAmount, transaction.processingCode, transaction.mti,"
    " transaction.original, transaction.finalClearing, enrichment.postingAccountId]"
)

idempotency = IdempotencyConfig(
    event_key_jmespath="transactionId",
    payload_validation_jmespath=POSTING_CONTENT,
    # Longer than a message can live: 4 days in the buffer plus 14 in the dead-letter queue
    # (a redrive back from the DLQ may come that late). The ledger stays idempotent beyond.
    expires_after_seconds=19 * 24 * 3600,
)


# How long a credential read from Secrets Manager is used before it is read again: a rotation
# reaches every warm function within this, and a 401/403 (a token) or a refused TLS handshake
# (a client certificate) makes it read again at once.
SECRET_MAX_AGE_SECONDS = 300.0

T = TypeVar("T")


class CachedSecret(Generic[T]):
    """A secret's value, read by reference (GetSecretValue on the ARN the construct gives)
    and kept ``max_age_seconds``; never in the environment. ``parse`` turns the SecretString
    into the value (and refuses what is not one, without quoting it)."""

    def __init__(
        self,
        secret_arn: str,
        parse: Callable[[str], T],
        *,
        client: Any = None,
        max_age_seconds: float = SECRET_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._arn = secret_arn
        self._parse = parse
        self._client = client
        self._max_age = max_age_seconds
        self._clock = clock
        self._value: T | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def value(self) -> T:
        with self._lock:
            if self._value is None or self._clock() - self._read_at >= self._max_age:
                client = self._client or boto3.client("secretsmanager")
                secret = client.get_secret_value(SecretId=self._arn)
                text = secret.get("SecretString")
                if not isinstance(text, str) or not text:
                    raise ValueError("the core banking secret holds no string")
                self._value, self._read_at = self._parse(text), self._clock()
            return self._value

    def forget(self) -> None:
        """Read the secret again next time (the core system refused it: rotated?)."""
        with self._lock:
            self._value = None


class SecretHeaderValue(CachedSecret[str]):
    """The credential header's value: ``prefix`` + the secret's string."""

    def __init__(self, secret_arn: str, prefix: str = "", **options: Any) -> None:
        super().__init__(secret_arn, str, **options)
        self._prefix = prefix

    def __call__(self) -> str:
        return self._prefix + self.value()


class SecretClientCertificate(CachedSecret[ClientCertificate]):
    """The TLS client certificate and its key, from the secret's JSON
    (``payment_posting_functions.domain.client_certificate``)."""

    def __init__(self, secret_arn: str, **options: Any) -> None:
        super().__init__(secret_arn, ClientCertificate.from_secret_string, **options)

    def __call__(self) -> ClientCertificate:
        return self.value()


def http_posting_system(env: Mapping[str, str]) -> PostingSystem:
    """The HTTP adapter with the settings the construct put in the environment."""
    from payment_posting_functions.domain.http_posting import ConflictMeaning, HttpPostingSystem

    secret_arn = env.get("CORE_BANKING_SECRET_ARN")
    credentials = (
        SecretHeaderValue(secret_arn, env.get("CORE_BANKING_CREDENTIALS_PREFIX", ""))
        if secret_arn
        else None
    )
    certificate_arn = env.get("CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN")
    client_certificate = SecretClientCertificate(certificate_arn) if certificate_arn else None
    return HttpPostingSystem(
        env["CORE_BANKING_URL"],
        timeout_seconds=float(env.get("CORE_BANKING_TIMEOUT_SECONDS", "3")),
        connect_timeout_seconds=float(env.get("CORE_BANKING_CONNECT_TIMEOUT_SECONDS", "1")),
        attempts=int(env.get("CORE_BANKING_ATTEMPTS", "3")),
        backoff_seconds=float(env.get("CORE_BANKING_BACKOFF_SECONDS", "0.2")),
        # A bundle known at synth is a file in a layer of its own (any size); one given at
        # deploy time (a stack parameter) is the PEM itself, in the environment.
        ca_bundle_file=env.get("CORE_BANKING_CA_BUNDLE_FILE") or None,
        ca_bundle_pem=env.get("CORE_BANKING_CA_BUNDLE") or None,
        credentials=credentials,
        credentials_header=env.get("CORE_BANKING_CREDENTIALS_HEADER", "Authorization"),
        on_credentials_refused=credentials.forget if credentials else None,
        client_certificate=client_certificate,
        on_client_certificate_refused=client_certificate.forget if client_certificate else None,
        on_conflict=ConflictMeaning(
            env.get("CORE_BANKING_409_MEANS", ConflictMeaning.ALREADY_POSTED.value)
        ),
    )


# The environment variables that configure the posting system.
_POSTING_SETTINGS = ("POSTING_SYSTEM", "LEDGER_", "CORE_BANKING_")


def posting_system() -> tuple[str, PostingSystem]:
    """The adapter POSTING_SYSTEM names: the built-in ``ledger`` (default) or ``http``.

    Built once per configuration: on Lambda the environment of a process never changes, but
    the local runtime runs stack after stack in one process, each with its own settings.
    """
    settings = tuple(
        sorted(
            (name, value)
            for name, value in os.environ.items()
            if name.startswith(_POSTING_SETTINGS)
        )
    )
    return posting_system_for(settings)


@cache
def posting_system_for(settings: tuple[tuple[str, str], ...]) -> tuple[str, PostingSystem]:
    env = dict(settings)
    kind = env.get("POSTING_SYSTEM", "ledger")
    if kind == "http":
        return kind, http_posting_system(env)
    if kind == "ledger":
        from payment_posting_functions.domain.ledger_v2.dynamodb import DynamoDBLedger
        from payment_posting_functions.domain.ledger_v2.posting_adapter import (
            LedgerPostingSystem,
        )

        ledger = DynamoDBLedger(
            boto3.client("dynamodb"),
            env["LEDGER_JOURNAL_TABLE_NAME"],
            env["LEDGER_BALANCES_TABLE_NAME"],
        )
        return kind, LedgerPostingSystem(ledger)
    raise ValueError(f"POSTING_SYSTEM must be 'ledger' or 'http', not {kind!r}")


@cache
def publisher() -> EventPublisher:
    from payment_posting_functions.domain.publisher import EventPublisher

    return EventPublisher(boto3.client("events"), os.environ["EVENT_BUS_NAME"])


@cache
def post_once() -> Callable[..., dict[str, Any]]:
    """Post at most once per transaction id (built on first use, with its table).

    The response, saved in the idempotency record, carries the outcome's event (``event``:
    its detail): the event is published after the batch, and a redelivery of a record whose
    event the bus refused (or never got: the function died first) publishes it from here.
    """
    from aws_lambda_powertools.utilities.idempotency import idempotent_function

    from payment_posting_functions.domain.idempotency_store import IdempotencyStore

    store = IdempotencyStore(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"])
    once: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="approved", persistence_store=store, config=idempotency
    )(post_unsaved)
    return once


def lifecycle_settings() -> LifecycleSettings:
    """The hold windows and the tip tolerance the construct put in the environment."""
    from payment_posting_functions.domain.posting_instructions import LifecycleSettings

    defaults = LifecycleSettings()
    return LifecycleSettings(
        hold_seconds=int(os.environ.get("HOLD_SECONDS", defaults.hold_seconds)),
        long_hold_seconds=int(os.environ.get("LONG_HOLD_SECONDS", defaults.long_hold_seconds)),
        tip_tolerance_bps=int(os.environ.get("TIP_TOLERANCE_BPS", defaults.tip_tolerance_bps)),
    )


def post_unsaved(approved: dict[str, Any], original_overdue: bool = False) -> dict[str, Any]:
    """Post one approved transaction; the response carries its outcome's event. Outside the
    idempotency layer: ``post_once`` is what the handler calls.

    ``original_overdue``: a clearing or reversal whose original is still not in the ledger
    has been waited for long enough (see ``original_overdue``); not part of the hashed content.
    """
    from payment_posting_functions.domain.card_message import TransactionType
    from payment_posting_functions.domain.events import PostingFailed, TransactionApproved
    from payment_posting_functions.domain.posting import (
        FAILURE_REASONS,
        PermanentPostingError,
        PostingFailureCode,
    )
    from payment_posting_functions.domain.posting_instructions import posting_request_for

    transaction = TransactionApproved.model_validate(approved)
    request = posting_request_for(
        transaction, lifecycle_settings(), original_overdue=original_overdue
    )
    system_name, system = posting_system()
    try:
        if transaction.transaction.transaction_type is TransactionType.INQUIRY:
            # The rules engine completes inquiries; one approved anyway moves no money.
            raise PermanentPostingError("an inquiry", PostingFailureCode.NOTHING_TO_POST)
        result = system.post(request)
    except PermanentPostingError as refusal:
        # Field names only (a conflict's): what differs, never the values.
        logger.warning(
            "posting refused",
            extra={
                "transaction_id": request.transaction_id,
                "reason_code": refusal.code.value,
                "differing_fields": list(refusal.fields),
            },
        )
        failed = PostingFailed(
            transaction_id=request.transaction_id,
            reason_code=refusal.code,
            reason=FAILURE_REASONS[refusal.code],
            account_id=request.account_id,
            amount=request.amount,
            posting_system=system_name,
        )
        metrics.add_metric(name="PostingsFailed", unit=MetricUnit.Count, value=1)
        record_end_to_end_latency(transaction)
        return {"outcome": failed.NAME.value, "event": failed.to_detail()}
    event = outcome_event(request, result, system_name)
    metrics.add_metric(name=f"Outcome{result.outcome.title()}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TransactionsPosted", unit=MetricUnit.Count, value=1)
    record_end_to_end_latency(transaction)
    return {"outcome": event.NAME.value, "status": result.status.value, "event": event.to_detail()}


def record_end_to_end_latency(approved: TransactionApproved) -> None:
    """Milliseconds from the authorization's transmission time to this terminal outcome.

    Recorded where the outcome is first decided (inside the idempotency layer): a redelivery
    answered from the record adds no second value for the same transaction."""
    metrics.add_metric(
        name="EndToEndLatency",
        unit=MetricUnit.Milliseconds,
        value=milliseconds_since(approved.transaction.transmitted_at),
    )


def outcome_event(
    request: PostingRequest, result: PostingResult, system_name: str
) -> LifecycleEvent:
    """The event a posting ends in, by what it did (``PostingOutcome``)."""
    from payment_posting_functions.domain.events import (
        AuthorizationHeld,
        ClearingMatched,
        ReversalApplied,
        TransactionPosted,
    )
    from payment_posting_functions.domain.money import Money
    from payment_posting_functions.domain.posting import PostingOutcome

    # Where the money went: suspense, when the ledger does not hold the account.
    account_id = result.account_id or request.account_id
    common = {
        "transaction_id": request.transaction_id,
        "posting_status": result.status.value,
        "account_id": account_id,
        "posting_system": system_name,
    }
    link = result.pending_id or request.link_id or result.posting_id
    if result.outcome is PostingOutcome.HELD:
        return AuthorizationHeld(**common, pending_id=link,
                                 counter_account_id=request.counter_account_id,
                                 amount=request.amount, hold_seconds=request.hold_seconds or 0,
                                 forced_reason=result.forced_reason)  # fmt: skip
    if result.outcome is PostingOutcome.CLEARED:
        return ClearingMatched(**common, pending_id=link,
                               counter_account_id=request.counter_account_id,
                               amount=request.amount, excess=result.excess,
                               final=request.final)  # fmt: skip
    if result.outcome in (PostingOutcome.VOIDED, PostingOutcome.CORRECTED,
                          PostingOutcome.REVERSED):  # fmt: skip
        undone = request.amount.amount if result.amount is None else result.amount
        return ReversalApplied(**common, original_id=link,
                               applied_as={PostingOutcome.VOIDED: "VOID",
                                           PostingOutcome.CORRECTED: "CORRECTION"}
                               .get(result.outcome, "CORE_SYSTEM"),
                               amount=Money(amount=undone, currency=request.amount.currency),
                               partial=result.partial)  # fmt: skip
    return TransactionPosted(**common, posting_id=result.posting_id,
                             counter_account_id=request.counter_account_id,
                             amount=request.amount, direction=request.direction.value,
                             message_class=request.message_class,
                             forced_reason=result.forced_reason,
                             original_id=result.original_id)  # fmt: skip


@cache
def outcome_events() -> dict[str, type[LifecycleEvent]]:
    """The events a posting can end in, by name."""
    from payment_posting_functions.domain.events import (
        AuthorizationHeld,
        ClearingMatched,
        PostingFailed,
        ReversalApplied,
        TransactionPosted,
    )

    return {
        model.NAME.value: model
        for model in (
            TransactionPosted,
            PostingFailed,
            AuthorizationHeld,
            ClearingMatched,
            ReversalApplied,
        )
    }


def outcome_entry(response: Mapping[str, Any]) -> Entry | None:
    """The PutEvents entry of a posting's saved response; None for a record completed before
    responses carried their event (its event was published before it was saved)."""
    detail = response.get("event")
    if not isinstance(detail, dict):
        return None
    from payment_posting_functions.domain.publisher import Entry

    return Entry.of(outcome_events()[detail["name"]].model_validate(detail))


def publish_outcomes(processed: list[tuple[Any, ...]]) -> list[str]:
    """Publish the events of the records that posted, in as few calls as PutEvents allows;
    the message ids of the records whose event the bus refused.

    The same event twice in one batch (one transaction delivered twice) goes out once.
    """
    entries: list[Entry] = []
    messages: list[list[str]] = []
    seen: dict[Entry, int] = {}
    for status, response, raw in processed:
        entry = outcome_entry(response) if status == "success" else None
        if entry is None:
            continue
        if entry not in seen:
            seen[entry] = len(entries)
            entries.append(entry)
            messages.append([])
        messages[seen[entry]].append(raw["messageId"])
    refused = publisher().put(entries)
    if refused:
        metrics.add_metric(name="EventsRefused", unit=MetricUnit.Count, value=len(refused))
        logger.warning("the bus refused events; their records return to the queue",
                       extra={"errors": sorted(set(refused.values()))})  # fmt: skip
    return [message_id for index in sorted(refused) for message_id in messages[index]]


class UnapprovedSourceError(Exception):
    """The message is not an approval of the rules engine: it is never posted."""


def approved_source() -> str:
    """Whose approvals are posted: the rules engine's source (the construct sets it)."""
    return os.environ.get("APPROVED_SOURCE", EventSource.RULES.value)


def original_overdue(record: SQSRecord) -> bool:
    """Has a clearing or reversal waited long enough for its original? From this receive on
    (``ORIGINAL_WAIT_RECEIVES``, one below the queue's maxReceiveCount: the construct sets
    it) a clearing is posted forced and a reversal fails, instead of the message going to
    the dead-letter queue."""
    limit = int(os.environ.get("ORIGINAL_WAIT_RECEIVES", "4"))
    return int(record.attributes.approximate_receive_count or "1") >= limit


def record_handler(record: SQSRecord) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyValidationError,
    )

    from payment_posting_functions.domain.posting import OriginalNotYetPosted

    # The queue holds the EventBridge event as the rule delivered it.
    try:
        event = json.loads(record.body)
        if not isinstance(event, dict) or event.get("source") != approved_source():
            # Only the rules engine approves; anything else in the buffer is forged or
            # misrouted. It fails, and after the queue's retries waits in the dead-letter
            # queue for a person, without moving money.
            metrics.add_metric(name="UnapprovedMessages", unit=MetricUnit.Count, value=1)
            raise UnapprovedSourceError("the message is not an approval of the rules engine")
        overdue = original_overdue(record)
        # A transient posting error propagates: the record is reported failed and returns.
        try:
            return post_once()(approved=event["detail"], original_overdue=overdue)
        except IdempotencyValidationError:
            # This id was posted with other content. Not answered from the record (that
            # would publish what was never booked for this content): the posting system,
            # asked itself, refuses it as a conflict and names the fields, never saved.
            metrics.add_metric(name="PostingConflicts", unit=MetricUnit.Count, value=1)
            return post_unsaved(event["detail"], original_overdue=overdue)
        except OriginalNotYetPosted:
            # Sent after its original, but overtook it in the pipeline: back to the queue,
            # to be tried again after the visibility timeout.
            metrics.add_metric(name="OriginalsAwaited", unit=MetricUnit.Count, value=1)
            raise
    except Exception as error:
        # The error class only: messages of parse errors may quote the body (card data). A
        # message that overtook its original is the pipeline's ordinary reordering, counted
        # by OriginalsAwaited: not a warning, or every clearing would write one.
        log = logger.debug if isinstance(error, OriginalNotYetPosted) else logger.warning
        log("a record failed and returns to the queue", extra={
            "messageId": record.message_id, "error": type(error).__name__})  # fmt: skip
        metrics.add_metric(name="PostingRetries", unit=MetricUnit.Count, value=1)
        raise


@logger.inject_lambda_context(log_event=False)  # bodies hold card data: never log the event
@capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    # What process_partial_response does, with the batch's events published between the
    # records and the response (a batch where every record failed still raises here).
    processor = batch_processor()
    with processor(event["Records"], record_handler, context):
        processed = processor.process()
    failures = [dict(failure) for failure in processor.response()["batchItemFailures"]]
    failures += [{"itemIdentifier": message_id} for message_id in publish_outcomes(processed)]
    return {"batchItemFailures": failures}
