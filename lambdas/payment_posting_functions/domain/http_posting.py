"""The posting port over HTTP: an external core-banking API that posts by idempotency key.

``POST {base_url}/postings`` with the posting as camelCase JSON (amounts as integer minor
units) and ``Idempotency-Key: <transactionId>``, so the core system can recognise a repeat.

Only a failure where the request may not have reached the server, or the server did not
answer in time (connection refused or reset, connect or read timeout), is retried within the
call, with the same key, a few times with exponential backoff and full jitter. An answer that
says "not now" (429, 5xx) is not retried here: it raises TransientPostingError, the message
returns to the queue and comes back after the queue's own delay, so a struggling core system
is not hammered by every consumer at once.

HTTPS only: a private CA is trusted through ``ca_bundle_file`` (a PEM file, as the construct
ships it in a layer) or ``ca_bundle_pem`` (and then only that CA, not the public ones);
credentials come from ``credentials`` (a callable, so the value is read where it is kept,
Secrets Manager, and never passed around in clear) as one header, by default
``Authorization``, or as a TLS client certificate (``client_certificate``, mutual TLS), or
both. A 401 or 403 is no verdict on the posting: the credential is re-read next time and the
message returns to the queue. A TLS failure is no verdict either (the message returns to the
queue and, if it stays, ends in the dead-letter queue for a person): a refused client
certificate is re-read next time, as a refused token is.

Pending transfers (authorization holds, ledger v2's two-phase transfers) are not sent: the
adapter posts final postings only, each once by its transaction id. A core system keeps its
own authorizations and available balance, so the built-in ledger's holds, posts, voids and
expiries have no counterpart in this API; a deployment that wants holds in the core system
needs an adapter for that system's hold API.

The request body never appears in an exception or a log line; the server's error message is
cut short and has any card number redacted before it becomes a refusal reason.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3 import exceptions as http_errors

from payment_posting_functions.domain.card_message import MessageClass
from payment_posting_functions.domain.client_certificate import (
    ClientCertificate,
    load_client_certificate,
)
from payment_posting_functions.domain.pan import redact_card_numbers
from payment_posting_functions.domain.posting import (
    PermanentPostingError,
    PostingFailureCode,
    PostingOutcome,
    PostingRequest,
    PostingResult,
    PostingStatus,
    TransientPostingError,
)

logger = logging.getLogger(__name__)

# Connect and read timeouts (NewConnectionError, NameResolutionError, ConnectTimeoutError and
# ReadTimeoutError all derive from urllib3's TimeoutError), and a connection dropped before a
# whole answer arrived (ProtocolError: reset, or a stale keep-alive connection the server
# closed). The Idempotency-Key makes a retry harmless even when the first try did arrive.
_RETRYABLE = (http_errors.TimeoutError, http_errors.NewConnectionError, http_errors.ProtocolError)


class ConflictMeaning(StrEnum):
    """What the core system means by HTTP 409 (its API documentation says which)."""

    # It already holds this Idempotency-Key: posted before (the default).
    ALREADY_POSTED = "already-posted"
    # The posting conflicts with the account's state: a refusal, the transaction fails.
    CONFLICT = "conflict"


def check_https_url(url: str) -> None:
    """Refuse what is not an https:// URL with a host, or carries credentials (user:pass@)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"the core banking URL must be https://host[:port][/path], got {url!r}")
    if parts.username is not None or parts.password is not None:
        # Never echo it: the URL holds a credential.
        raise ValueError(
            "the core banking URL must not carry credentials (user:password@); "
            "give them by reference (a Secrets Manager secret)"
        )
    if parts.query or parts.fragment:
        raise ValueError("the core banking URL must be https://host[:port][/path], no query")


def worst_case_seconds(
    *, attempts: int, timeout_seconds: float, connect_timeout_seconds: float, backoff_seconds: float
) -> float:
    """The longest one ``post`` can take: every try times out, every backoff sleeps its most."""
    backoffs = float(sum(backoff_seconds * 2**n for n in range(attempts - 1)))
    return attempts * (connect_timeout_seconds + timeout_seconds) + backoffs


MESSAGE_LIMIT = 200  # characters of the server's error message kept in a refusal reason
_MAX_BODY_BYTES = 64 * 1024  # an answer is a small JSON document; never buffer more


class HttpPostingSystem:
    """Posts to a core-banking API; idempotent by transaction id, sent as Idempotency-Key."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 3.0,
        connect_timeout_seconds: float = 1.0,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
        ca_bundle_pem: str | None = None,
        ca_bundle_file: str | None = None,
        credentials: Callable[[], str] | None = None,
        credentials_header: str = "Authorization",
        on_conflict: ConflictMeaning = ConflictMeaning.ALREADY_POSTED,
        on_credentials_refused: Callable[[], None] | None = None,
        client_certificate: Callable[[], ClientCertificate] | None = None,
        on_client_certificate_refused: Callable[[], None] | None = None,
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        """``attempts`` counts tries of one call, so 1 means no in-call retry.

        The worst case of one call is ``worst_case_seconds`` of these settings; the function
        timeout has to leave room for that per message (the construct checks it at synth).

        :param ca_bundle_pem: the PEM certificates to trust instead of the public CAs (a bank's
            private CA). Default: the public CAs.
        :param ca_bundle_file: the same, from a PEM file (any size: root and intermediates).
            Give one of the two.
        :param credentials: returns the value of ``credentials_header`` (e.g. ``Bearer ...``),
            called for every request (cache it on the callable's side).
        :param on_credentials_refused: called on a 401 or 403, e.g. to forget a cached secret.
        :param client_certificate: returns the certificate to present when the server asks
            for one (mutual TLS), called for every request (cache it on the callable's side);
            a new one (rotated) gets a new connection pool.
        :param on_client_certificate_refused: called when a TLS handshake fails other than
            on the server's certificate (the server refused ours?), e.g. to forget it.
        :param pool: a pool of one's own (tests); the CA bundle then does not apply.
        """
        check_https_url(base_url)
        if ca_bundle_pem is not None and ca_bundle_file is not None:
            raise ValueError("give ca_bundle_pem or ca_bundle_file, not both")
        if pool is not None and client_certificate is not None:
            raise ValueError("give a pool or a client certificate, not both")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if timeout_seconds <= 0 or connect_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")
        if backoff_seconds < 0:
            raise ValueError("backoff_seconds must not be negative")
        self._url = base_url.rstrip("/") + "/postings"
        self._timeout = urllib3.Timeout(connect=connect_timeout_seconds, read=timeout_seconds)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._ca_bundle_pem = ca_bundle_pem
        self._ca_bundle_file = ca_bundle_file
        self._client_certificate = client_certificate
        self._on_client_certificate_refused = on_client_certificate_refused
        # With a client certificate, the pool is made for the certificate at the first post.
        self._pool_certificate: ClientCertificate | None = None
        if pool is not None:
            self._pool = pool
        else:
            self._pool = _pool(_tls_context(ca_bundle_pem, ca_bundle_file))
        self._credentials = credentials
        self._credentials_header = credentials_header
        self._on_conflict = ConflictMeaning(on_conflict)
        self._on_credentials_refused = on_credentials_refused
        self._sleep = sleep
        self._random = random

    def post(self, request: PostingRequest) -> PostingResult:
        body = json.dumps(wire_body(request)).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": request.transaction_id,
        }
        if self._credentials is not None:
            try:
                headers[self._credentials_header] = self._credentials()
            except Exception as error:  # the secret store is down or refuses: not a verdict
                raise TransientPostingError(
                    f"core banking credentials could not be read: {type(error).__name__}"
                ) from error
        if self._client_certificate is not None:
            self._use_client_certificate(self._client_certificate)
        failure: Exception | None = None
        for attempt in range(self._attempts):
            if attempt:
                # Full jitter: anywhere in [0, backoff * 2**n) before retry n (n from 0).
                self._sleep(self._random() * self._backoff * 2 ** (attempt - 1))
            try:
                status, payload = self._send(body, headers)
            except _RETRYABLE as error:
                failure = error
                logger.warning(
                    "core banking request failed",
                    extra={
                        "transaction_id": request.transaction_id,
                        "attempt": attempt + 1,
                        "attempts": self._attempts,
                        "error": type(error).__name__,
                    },
                )
                continue
            except http_errors.SSLError as error:
                self._handshake_failed(error, request.transaction_id)
                raise TransientPostingError(
                    f"core banking request failed: {type(error).__name__}"
                ) from error
            except http_errors.HTTPError as error:
                # Anything else (a proxy, an undecodable body) is no verdict on the posting
                # and not worth an immediate retry; the queue will bring it back.
                raise TransientPostingError(
                    f"core banking request failed: {type(error).__name__}"
                ) from error
            if status in (401, 403) and self._on_credentials_refused is not None:
                self._on_credentials_refused()
            result = _interpret(status, payload, request.transaction_id, self._on_conflict)
            return as_its_class(request, result)
        raise TransientPostingError(
            f"core banking system did not answer after {self._attempts} attempt(s): "
            f"{type(failure).__name__}"
        ) from failure

    def _use_client_certificate(self, source: Callable[[], ClientCertificate]) -> None:
        """The pool for the current certificate: a rotated one gets a pool of its own."""
        try:
            certificate = source()
        except Exception as error:  # the secret store is down or refuses: not a verdict
            raise TransientPostingError(
                f"core banking client certificate could not be read: {type(error).__name__}"
            ) from error
        if certificate == self._pool_certificate:
            return
        context = _tls_context(self._ca_bundle_pem, self._ca_bundle_file)
        try:
            load_client_certificate(context, certificate)
        except (ssl.SSLError, ValueError) as error:
            # A key that does not match the certificate, or is no key: the secret's content
            # is wrong, not the posting. Read again next time (someone may be fixing it).
            if self._on_client_certificate_refused is not None:
                self._on_client_certificate_refused()
            raise TransientPostingError(
                f"core banking client certificate could not be loaded: {type(error).__name__}"
            ) from error
        previous, self._pool = self._pool, _pool(context)
        self._pool_certificate = certificate
        previous.clear()

    def _handshake_failed(self, error: http_errors.SSLError, transaction_id: str) -> None:
        """Say why (OpenSSL's reason names no data), and forget a client certificate the
        server may have refused: rotated on the server's side, or expired."""
        cause = error.args[0] if error.args else error.__context__
        server_not_trusted = isinstance(cause, ssl.SSLCertVerificationError)
        logger.warning(
            "core banking TLS handshake failed",
            extra={
                "transaction_id": transaction_id,
                "error": type(cause).__name__,
                "reason": getattr(cause, "reason", None),
                "server_certificate_refused": server_not_trusted,
            },
        )
        if not server_not_trusted and self._on_client_certificate_refused is not None:
            self._on_client_certificate_refused()

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        response = self._pool.request(
            "POST",
            self._url,
            body=body,
            headers=headers,
            timeout=self._timeout,
            retries=False,
            redirect=False,
            preload_content=False,
        )
        try:
            payload = response.read(_MAX_BODY_BYTES + 1)
            if len(payload) > _MAX_BODY_BYTES:
                # Unread data left on the connection: drop it rather than reuse it.
                payload = payload[:_MAX_BODY_BYTES]
                response.close()
        finally:
            response.release_conn()
        return response.status, payload

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()


# The core system receives the message class and the link and keeps holds its own way: a 2xx
# says it applied the message as its class asks (the README's section on posting over HTTP).
_CLASS_OUTCOMES = {
    MessageClass.AUTHORIZATION: PostingOutcome.HELD,
    MessageClass.CLEARING: PostingOutcome.CLEARED,
    MessageClass.REVERSAL: PostingOutcome.REVERSED,
    MessageClass.FINANCIAL: PostingOutcome.POSTED,
}


# Always sent; the rest of the request only where it says something (an authorization's
# hold window, a clearing's tolerance and finality, an advice's reason, a refund's original).
_ALWAYS = frozenset({"transaction_id", "account_id", "counter_account_id", "amount",
                     "direction", "message_class"})  # fmt: skip


def wire_body(request: PostingRequest) -> dict[str, Any]:
    """The JSON body the core system receives: camelCase, integer minor units. Never the
    pipeline's own retry state (``original_overdue``)."""
    fields = PostingRequest.model_fields
    defaults = {name: field.default for name, field in fields.items()}
    return request.model_dump(
        mode="json",
        by_alias=True,
        include={name for name in fields
                 if name in _ALWAYS or (name != "original_overdue"
                                        and getattr(request, name) != defaults[name])},
    )  # fmt: skip


def as_its_class(request: PostingRequest, result: PostingResult) -> PostingResult:
    """What the core system's acceptance means for the message's class."""
    outcome = _CLASS_OUTCOMES[request.message_class]
    linked = request.link_id if outcome is not PostingOutcome.POSTED else None
    return result.model_copy(update={"outcome": outcome, "pending_id": linked})


def _tls_context(ca_bundle_pem: str | None, ca_bundle_file: str | None) -> ssl.SSLContext:
    # The default context: hostname check, minimum TLS version and the public CAs, or with
    # cadata or cafile only these CAs. A missing file raises here, when the adapter is built:
    # the message fails and returns to the queue, as it would on AWS without the layer.
    return ssl.create_default_context(cafile=ca_bundle_file, cadata=ca_bundle_pem)


def _pool(context: ssl.SSLContext) -> urllib3.PoolManager:
    # retries=False: urllib3 retries nothing and follows no redirect; this class decides.
    return urllib3.PoolManager(retries=False, ssl_context=context)


def _interpret(
    status: int, payload: bytes, transaction_id: str, on_conflict: ConflictMeaning
) -> PostingResult:
    if status in (200, 201):
        return PostingResult(
            status=PostingStatus.POSTED, posting_id=_posting_id(payload, transaction_id)
        )
    if status == 409 and on_conflict is ConflictMeaning.CONFLICT:
        message = _error_message(payload)
        reason = "core banking system refused the posting: HTTP 409 (conflict)"
        raise PermanentPostingError(
            f"{reason}: {message}" if message else reason, PostingFailureCode.REFUSED_BY_CORE
        )
    if status == 409:
        # The core system already holds this Idempotency-Key: posted before (by an earlier
        # delivery, or by an earlier try of this very call whose answer was lost).
        return PostingResult(
            status=PostingStatus.ALREADY_POSTED, posting_id=_posting_id(payload, transaction_id)
        )
    if status == 429 or status >= 500:
        raise TransientPostingError(f"core banking system answered HTTP {status}")
    if status in (401, 403):
        # Our credentials, not the posting: rotated or revoked. The message comes back after
        # the queue's delay with the credential read again; a person looks if it stays.
        raise TransientPostingError(f"core banking system refused the credentials: HTTP {status}")
    if status == 408:
        # Request Timeout is the server timing out on us, not a verdict on the posting.
        raise TransientPostingError("core banking system answered HTTP 408")
    if 400 <= status < 500:
        message = _error_message(payload)
        reason = f"core banking system refused the posting: HTTP {status}"
        raise PermanentPostingError(
            f"{reason}: {message}" if message else reason, PostingFailureCode.REFUSED_BY_CORE
        )
    # 1xx, another 2xx (202 Accepted is not a posting) or a redirect: not an answer this
    # adapter understands; a configuration problem, so not a refusal of the transaction.
    raise TransientPostingError(f"core banking system answered unexpected HTTP {status}")


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:  # also UnicodeDecodeError
        return {}
    return document if isinstance(document, dict) else {}


def _posting_id(payload: bytes, transaction_id: str) -> str:
    posting_id = _json_object(payload).get("postingId")
    if isinstance(posting_id, str) and posting_id:
        return posting_id
    if isinstance(posting_id, int) and not isinstance(posting_id, bool):
        return str(posting_id)
    return transaction_id


def _error_message(payload: bytes) -> str:
    """The JSON ``message`` of an error answer, redacted and cut short; "" when there is none."""
    message = _json_object(payload).get("message")
    if not isinstance(message, str):
        return ""
    # Redact before cutting, so a card number across the cut cannot survive as a stub that
    # no longer looks like a PAN; and again after, in case the cut made one of a longer run.
    message = redact_card_numbers(" ".join(message.split()))
    return redact_card_numbers(message[:MESSAGE_LIMIT]).strip()
