"""The posting port over HTTP: an external core-banking API that posts by idempotency key.

``POST {base_url}/postings`` with the posting as camelCase JSON (amounts as integer minor
units) and ``Idempotency-Key: <transactionId>``, so the core system can recognise a repeat.

Only a failure where the request may not have reached the server, or the server did not
answer in time (connection refused or reset, connect or read timeout), is retried within the
call, with the same key, a few times with exponential backoff and full jitter. An answer that
says "not now" (429, 5xx) is not retried here: it raises TransientPostingError, the message
returns to the queue and comes back after the queue's own delay, so a struggling core system
is not hammered by every consumer at once.

The request body never appears in an exception or a log line; the server's error message is
cut short and has any card number redacted before it becomes a refusal reason.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import urllib3
from urllib3 import exceptions as http_errors

from payment_posting_functions.domain.pan import redact_card_numbers
from payment_posting_functions.domain.posting import (
    PermanentPostingError,
    PostingFailureCode,
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
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        """``attempts`` counts tries of one call, so 1 means no in-call retry.

        The worst case of one call is about ``attempts * (connect + read timeout)`` plus the
        backoff sleeps; the function timeout has to leave room for that per message.
        """
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
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
        # retries=False: urllib3 retries nothing and follows no redirect; this class decides.
        self._pool = pool if pool is not None else urllib3.PoolManager(retries=False)
        self._sleep = sleep
        self._random = random

    def post(self, request: PostingRequest) -> PostingResult:
        body = json.dumps(request.model_dump(mode="json", by_alias=True)).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": request.transaction_id,
        }
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
            except http_errors.HTTPError as error:
                # Anything else (TLS, a proxy, an undecodable body) is no verdict on the
                # posting and not worth an immediate retry; the queue will bring it back.
                raise TransientPostingError(
                    f"core banking request failed: {type(error).__name__}"
                ) from error
            return _interpret(status, payload, request.transaction_id)
        raise TransientPostingError(
            f"core banking system did not answer after {self._attempts} attempt(s): "
            f"{type(failure).__name__}"
        ) from failure

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


def _interpret(status: int, payload: bytes, transaction_id: str) -> PostingResult:
    if status in (200, 201):
        return PostingResult(
            status=PostingStatus.POSTED, posting_id=_posting_id(payload, transaction_id)
        )
    if status == 409:
        # The core system already holds this Idempotency-Key: posted before (by an earlier
        # delivery, or by an earlier try of this very call whose answer was lost).
        return PostingResult(
            status=PostingStatus.ALREADY_POSTED, posting_id=_posting_id(payload, transaction_id)
        )
    if status == 429 or status >= 500:
        raise TransientPostingError(f"core banking system answered HTTP {status}")
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
