"""A fake core-banking API on 127.0.0.1, over TLS, for the HTTP posting target locally.

It speaks what ``payment_posting_functions.domain.http_posting`` expects of a core system:
``POST /postings`` with an
``Idempotency-Key``; 201 and a posting id the first time, 409 (already posted) for a key it
holds; 401 unless the request carries the credential the runtime read from the secret. Its
certificate comes from a CA the runtime generates (``payment_local/tls.py``), which the
posting function trusts through the CA bundle the template gives it. For mutual TLS it also
refuses the handshake of a client without a certificate that CA issued.
"""

from __future__ import annotations

import hmac
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from payment_local.tls import LOOPBACK, LocalCertificateAuthority

_MAX_BODY = 64 * 1024


class CoreSystemFaults(Protocol):
    """Faults the core system plays on demand (``payment_local.faults``)."""

    def status(self) -> int | None:
        """The "not now" status to answer a posting with instead (503, 429), or None."""

    def delay(self) -> float:
        """Seconds to wait before answering a posting it has booked (0: at once)."""


@dataclass
class CoreBankingState:
    """What the fake core system holds: postings by idempotency key, and who it lets in."""

    expected_credential: str | None = None  # the full header value, e.g. "Bearer ..."
    credentials_header: str = "Authorization"
    postings: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused_credentials: int = 0
    requests: int = 0
    # Why each refused TLS handshake failed (OpenSSL's reason, e.g. TLSV1_ALERT_UNKNOWN_CA
    # when the client did not trust this server's CA).
    refused_handshakes: list[str] = field(default_factory=list)
    # The common name of the client certificate each request came with ("" without one).
    client_certificates: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: CoreSystemFaults | None = None

    def handshakes_refused(self, at_least: int = 1, timeout: float = 2.0) -> list[str]:
        """The refused handshakes, once there are ``at_least`` (or ``timeout`` passed): the
        server notes one a moment after the client has seen it fail."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                refused = list(self.refused_handshakes)
            if len(refused) >= at_least or time.monotonic() > deadline:
                return refused
            time.sleep(0.01)

    def post(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if key in self.postings:
                return 409, {"postingId": self.postings[key]["postingId"]}
            posting_id = f"core-{len(self.postings) + 1:06d}"
            self.postings[key] = {"postingId": posting_id, **body}
            return 201, {"postingId": posting_id}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    state: CoreBankingState  # set on the subclass the server is made with

    def do_POST(self) -> None:
        state = self.state
        with state.lock:
            state.requests += 1
            state.client_certificates.append(_common_name(self.connection))
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(min(length, _MAX_BODY))
        if self.path.rstrip("/") != "/postings":
            self._answer(404, {"message": "not found"})
            return
        presented = self.headers.get(state.credentials_header, "")
        expected = state.expected_credential
        if expected is None or not hmac.compare_digest(presented.encode(), expected.encode()):
            with state.lock:
                state.refused_credentials += 1
            self._answer(401, {"message": "unauthorized"})
            return
        key = self.headers.get("Idempotency-Key")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not key or not isinstance(body, dict):
            self._answer(400, {"message": "an Idempotency-Key and a JSON object are required"})
            return
        faults = state.faults
        refused = faults.status() if faults is not None else None
        if refused is not None:
            self._answer(refused, {"message": "not now (injected fault)"})
            return
        delay = faults.delay() if faults is not None else 0.0
        answer = state.post(key, body)
        if delay:
            # Booked, but answered after the client gave up: its retry must hear 409.
            time.sleep(delay)
            try:
                self._answer(*answer)
            except OSError:
                self.close_connection = True  # the client closed it: nobody to tell
            return
        self._answer(*answer)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines would only clutter the demo's output


class _TlsServer(ThreadingHTTPServer):
    """Notes every refused handshake: the TLS handshake happens as a connection is accepted."""

    state: CoreBankingState

    def get_request(self) -> tuple[Any, Any]:
        try:
            return super().get_request()
        except ssl.SSLError as error:
            with self.state.lock:
                self.state.refused_handshakes.append(error.reason or type(error).__name__)
            raise


def _common_name(connection: Any) -> str:
    certificate: Any = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
    for attributes in (certificate or {}).get("subject", ()):
        for key, value in attributes:
            if key == "commonName":
                return str(value)
    return ""


@dataclass(frozen=True)
class CoreBankingServer:
    """A running fake core system: its URL, the CA that signed its certificate, its state."""

    url: str
    ca_pem: str
    state: CoreBankingState
    authority: LocalCertificateAuthority
    context: ssl.SSLContext

    def require_client_certificates(self) -> None:
        """From now on, refuse the TLS handshake of a client without a certificate the CA
        issued (each connection is accepted with the context as it is then)."""
        self.context.load_verify_locations(cadata=self.authority.ca_pem)
        self.context.verify_mode = ssl.CERT_REQUIRED

    @property
    def requires_client_certificates(self) -> bool:
        return self.context.verify_mode == ssl.CERT_REQUIRED


@contextmanager
def core_banking_server(
    authority: LocalCertificateAuthority | None = None,
    *,
    require_client_certificates: bool = False,
) -> Iterator[CoreBankingServer]:
    """Serve on 127.0.0.1 at a free port, over TLS, until the block ends."""
    authority = authority or LocalCertificateAuthority.generate(LOOPBACK)
    state = CoreBankingState()
    handler = type("CoreBankingHandler", (_Handler,), {"state": state})
    server = _TlsServer((authority.host, 0), handler)
    server.state = state
    server.daemon_threads = True
    context = authority.server_context()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    running = CoreBankingServer(
        f"https://{authority.host}:{port}", authority.ca_pem, state, authority, context
    )
    if require_client_certificates:
        running.require_client_certificates()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield running
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
