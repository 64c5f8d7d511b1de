"""The HTTP posting adapter against a real HTTPS server on loopback, scripted per test.

The server's certificate comes from a CA generated for the session; the adapter trusts it
through ``ca_bundle_pem``, as it would a bank's private CA.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from payment_local.tls import LocalCertificateAuthority
from payment_posting_functions.domain.http_posting import (
    MESSAGE_LIMIT,
    ConflictMeaning,
    HttpPostingSystem,
)
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.pan import REDACTION as PAN_REDACTION
from payment_posting_functions.domain.posting import (
    Direction,
    PermanentPostingError,
    PostingRequest,
    PostingStatus,
    TransientPostingError,
)

SLOW = 0.2  # the client's read timeout in the slow-server tests
STALL = 5.0  # how long a "slow" reply stalls at most; released at teardown, never waited out

REQUEST = PostingRequest(
    transaction_id="txn-0001",
    account_id="acct-customer-42",
    counter_account_id="acct-clearing-visa",
    amount=Money(amount=123_456, currency="EUR"),
    direction=Direction.DEBIT,
)
EXPECTED_BODY = {
    "transactionId": "txn-0001",
    "accountId": "acct-customer-42",
    "counterAccountId": "acct-clearing-visa",
    "amount": {"amount": 123_456, "currency": "EUR"},
    "direction": "DEBIT",
    "messageClass": "FINANCIAL",
}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded when not bytes; no body when None
    delay: float = 0.0  # stall this long before answering
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    @property
    def idempotency_key(self) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get("idempotency-key")


@dataclass
class CoreBanking:
    """The stub's state: replies in order (the last one repeats) and every request seen."""

    base_url: str
    replies: list[Reply] = field(default_factory=lambda: [Reply()])
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def next_reply(self, request: Received) -> Reply:
        with self.lock:
            self.received.append(request)
            index = min(len(self.received), len(self.replies)) - 1
            return self.replies[index]


def _handler_for(stub: CoreBanking) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API would
        timeout = 2  # an idle keep-alive connection frees its thread soon

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            reply = stub.next_reply(Received(self.path, dict(self.headers.items()), raw))
            if reply.delay:
                stub.release.wait(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            if isinstance(reply.body, bytes):
                payload = reply.body
            else:
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting and closed
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def authority() -> LocalCertificateAuthority:
    return LocalCertificateAuthority.generate()


@pytest.fixture
def core_banking(authority: LocalCertificateAuthority) -> Iterator[CoreBanking]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = authority.server_context().wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    stub = CoreBanking(base_url=f"https://127.0.0.1:{port}")
    server.RequestHandlerClass = _handler_for(stub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield stub
    finally:
        stub.release.set()  # let stalled handlers finish now
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


@dataclass
class Harness:
    ca_pem: str
    sleeps: list[float] = field(default_factory=list)
    pools: list[urllib3.PoolManager] = field(default_factory=list)
    systems: list[HttpPostingSystem] = field(default_factory=list)

    def system(self, base_url: str, **options: Any) -> HttpPostingSystem:
        options.setdefault("ca_bundle_pem", self.ca_pem)
        options.setdefault("timeout_seconds", 1.0)
        options.setdefault("connect_timeout_seconds", 0.5)
        options.setdefault("sleep", self.sleeps.append)
        system = HttpPostingSystem(base_url, **options)
        self.systems.append(system)
        return system


@pytest.fixture
def harness(authority: LocalCertificateAuthority) -> Iterator[Harness]:
    harness = Harness(ca_pem=authority.ca_pem)
    yield harness
    for system in harness.systems:
        system.close()
    for pool in harness.pools:
        pool.clear()


@pytest.fixture
def post(core_banking: CoreBanking, harness: Harness) -> Callable[..., Any]:
    """Post REQUEST to the stub with a fresh adapter built with the given options."""

    def post(**options: Any) -> Any:
        return harness.system(core_banking.base_url, **options).post(REQUEST)

    return post


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


class CountingPool(urllib3.PoolManager):
    def __init__(self) -> None:
        super().__init__(retries=False)
        self.calls = 0

    def urlopen(self, method: str, url: str, *args: Any, **kw: Any) -> urllib3.BaseHTTPResponse:
        self.calls += 1
        return super().urlopen(method, url, *args, **kw)


# Answers


def test_200_posts_with_the_transaction_id_as_idempotency_key(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    result = post()

    assert result.status is PostingStatus.POSTED
    assert result.posting_id == "txn-0001"  # no postingId in the answer
    [seen] = core_banking.received
    assert seen.path == "/postings"
    assert seen.idempotency_key == "txn-0001"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.body == EXPECTED_BODY
    assert type(seen.body["amount"]["amount"]) is int  # never 123456.0
    assert b"." not in seen.raw.split(b'"amount":')[-1].split(b",")[0]


def test_201_takes_the_posting_id_from_the_answer(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    core_banking.script(Reply(201, {"postingId": "core-98765"}))

    result = post()

    assert result.status is PostingStatus.POSTED
    assert result.posting_id == "core-98765"


def test_a_trailing_slash_on_the_base_url_is_harmless(
    core_banking: CoreBanking, harness: Harness
) -> None:
    harness.system(core_banking.base_url + "/").post(REQUEST)

    assert [seen.path for seen in core_banking.received] == ["/postings"]


@pytest.mark.parametrize(
    ("body", "posting_id"), [(None, "txn-0001"), ({"postingId": "core-1"}, "core-1")]
)
def test_409_means_already_posted(
    core_banking: CoreBanking, post: Callable[..., Any], body: Any, posting_id: str
) -> None:
    core_banking.script(Reply(409, body))

    result = post()

    assert result.status is PostingStatus.ALREADY_POSTED
    assert result.posting_id == posting_id
    assert len(core_banking.received) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 408])
def test_throttled_or_unavailable_is_transient_without_an_in_call_retry(
    core_banking: CoreBanking, post: Callable[..., Any], harness: Harness, status: int
) -> None:
    core_banking.script(Reply(status, {"message": "try later"}))

    with pytest.raises(TransientPostingError, match=str(status)):
        post()

    assert len(core_banking.received) == 1  # the queue retries, with its own delay
    assert harness.sleeps == []


def test_400_is_a_refusal_naming_the_status_and_the_message(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    core_banking.script(Reply(400, {"message": "account closed", "code": "ACCT_CLOSED"}))

    with pytest.raises(PermanentPostingError) as refusal:
        post()

    assert "400" in str(refusal.value)
    assert "account closed" in str(refusal.value)
    assert len(core_banking.received) == 1


@pytest.mark.parametrize("body", [b"<html>Bad Request</html>", b"", {"message": 42}, [1, 2]])
def test_a_refusal_without_a_message_names_the_status(
    core_banking: CoreBanking, post: Callable[..., Any], body: Any
) -> None:
    core_banking.script(Reply(404, body))

    with pytest.raises(PermanentPostingError) as refusal:
        post()

    assert str(refusal.value) == "core banking system refused the posting: HTTP 404"


def test_a_card_number_in_an_error_message_is_redacted(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    core_banking.script(Reply(422, {"message": "card 4111 1111 1111 1111 is not allowed"}))

    with pytest.raises(PermanentPostingError) as refusal:
        post()

    reason = str(refusal.value)
    assert "422" in reason
    assert "4111" not in reason
    assert PAN_REDACTION in reason


def test_a_card_number_across_the_cut_leaves_no_digits(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    # Cut first and redact after would leave "4111 1111 11", too short to look like a PAN.
    message = "x" * (MESSAGE_LIMIT - 12) + "4111 1111 1111 1111 rest of the message"
    core_banking.script(Reply(422, {"message": message}))

    with pytest.raises(PermanentPostingError) as refusal:
        post()

    assert "4111" not in str(refusal.value)


def test_a_long_message_is_cut_short(core_banking: CoreBanking, post: Callable[..., Any]) -> None:
    core_banking.script(Reply(400, {"message": "z" * 5000}))

    with pytest.raises(PermanentPostingError) as refusal:
        post()

    assert str(refusal.value).count("z") == MESSAGE_LIMIT


def test_exceptions_and_logs_never_carry_the_request(
    core_banking: CoreBanking, post: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    core_banking.script(Reply(delay=STALL), Reply(400, {"message": "no"}))

    with pytest.raises(PermanentPostingError) as refusal:
        post(timeout_seconds=SLOW)

    assert caplog.records  # the timed-out try was logged
    logged = caplog.text + " ".join(repr(record.__dict__) for record in caplog.records)
    for text in (str(refusal.value), logged):
        assert "acct-customer-42" not in text
        assert "acct-clearing-visa" not in text
    assert "123456" not in str(refusal.value)


@pytest.mark.parametrize("status", [202, 302])
def test_an_answer_the_adapter_does_not_understand_is_transient(
    core_banking: CoreBanking, post: Callable[..., Any], status: int
) -> None:
    core_banking.script(Reply(status, {"location": "elsewhere"}))

    with pytest.raises(TransientPostingError, match=f"unexpected HTTP {status}"):
        post()

    assert len(core_banking.received) == 1  # a redirect is not followed


# No answer: retried within the call, same key


def test_a_server_that_never_answers_in_time_is_tried_attempts_times(
    core_banking: CoreBanking, post: Callable[..., Any], harness: Harness
) -> None:
    core_banking.script(Reply(delay=STALL))
    started = time.monotonic()

    with pytest.raises(TransientPostingError, match="3 attempt"):
        post(timeout_seconds=SLOW, attempts=3)

    assert time.monotonic() - started < 3 * SLOW + 1.0  # bounded by the read timeouts
    assert len(core_banking.received) == 3
    assert {seen.idempotency_key for seen in core_banking.received} == {"txn-0001"}
    assert all(seen.body == EXPECTED_BODY for seen in core_banking.received)
    assert len(harness.sleeps) == 2  # between tries, none after the last


def test_slow_once_then_answered_posts_after_two_requests(
    core_banking: CoreBanking, post: Callable[..., Any], harness: Harness
) -> None:
    core_banking.script(Reply(delay=STALL), Reply(201, {"postingId": "core-2"}))

    result = post(timeout_seconds=SLOW)

    assert result.status is PostingStatus.POSTED
    assert result.posting_id == "core-2"
    assert [seen.idempotency_key for seen in core_banking.received] == ["txn-0001"] * 2
    assert len(harness.sleeps) == 1


def test_posted_by_a_try_whose_answer_was_lost_is_already_posted(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    # The first try arrived and posted, but its answer came too late; the retry meets 409.
    core_banking.script(Reply(201, delay=STALL), Reply(409))

    result = post(timeout_seconds=SLOW)

    assert result.status is PostingStatus.ALREADY_POSTED
    assert len(core_banking.received) == 2


def test_a_connection_dropped_without_an_answer_is_retried(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    core_banking.script(Reply(drop=True), Reply(200, {"postingId": "core-3"}))

    result = post()

    assert result.posting_id == "core-3"
    assert len(core_banking.received) == 2


def test_connection_refused_is_tried_attempts_times_then_transient(harness: Harness) -> None:
    pool = CountingPool()
    harness.pools.append(pool)
    system = HttpPostingSystem(
        f"https://127.0.0.1:{_free_port()}",
        connect_timeout_seconds=0.5,
        timeout_seconds=0.5,
        attempts=3,
        pool=pool,
        sleep=harness.sleeps.append,
    )

    with pytest.raises(TransientPostingError, match="3 attempt") as failure:
        system.post(REQUEST)

    assert pool.calls == 3
    assert len(harness.sleeps) == 2
    assert isinstance(failure.value.__cause__, urllib3.exceptions.NewConnectionError)


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999_999])
def test_backoff_is_exponential_with_full_jitter(harness: Harness, draw: float) -> None:
    system = harness.system(
        f"https://127.0.0.1:{_free_port()}", attempts=5, backoff_seconds=0.2, random=lambda: draw
    )

    with pytest.raises(TransientPostingError):
        system.post(REQUEST)

    assert harness.sleeps == pytest.approx([draw * 0.2 * 2**n for n in range(4)])


def test_real_jitter_stays_under_each_bound(harness: Harness) -> None:
    system = harness.system(f"https://127.0.0.1:{_free_port()}", attempts=6, backoff_seconds=0.2)

    with pytest.raises(TransientPostingError):
        system.post(REQUEST)

    assert len(harness.sleeps) == 5
    for n, slept in enumerate(harness.sleeps):
        assert 0 <= slept <= 0.2 * 2**n


def test_one_attempt_means_no_retry(harness: Harness) -> None:
    system = harness.system(f"https://127.0.0.1:{_free_port()}", attempts=1)

    with pytest.raises(TransientPostingError, match="1 attempt"):
        system.post(REQUEST)

    assert harness.sleeps == []


def test_the_default_sleep_is_real_but_short(
    core_banking: CoreBanking, authority: LocalCertificateAuthority
) -> None:
    # Without injected sleep or pool: the defaults work end to end.
    core_banking.script(Reply(drop=True), Reply(200))
    system = HttpPostingSystem(
        core_banking.base_url,
        backoff_seconds=0.01,
        timeout_seconds=1.0,
        ca_bundle_pem=authority.ca_pem,
    )

    assert system.post(REQUEST).status is PostingStatus.POSTED
    system.close()


@pytest.mark.parametrize(
    "options",
    [
        {"attempts": 0},
        {"timeout_seconds": 0},
        {"connect_timeout_seconds": -1},
        {"backoff_seconds": -0.1},
    ],
)
def test_nonsense_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        HttpPostingSystem("https://127.0.0.1:1", **options)


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:8080",
        "core.example/api",
        "http://core.example/api",
        "ftp://core.example/api",
        "https:///no-host",
        "https://core.example/api?token=x",
    ],
)
def test_anything_but_an_https_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        HttpPostingSystem(url)


@pytest.mark.parametrize(
    "url", ["https://user:s3cret@core.example/api", "https://token@core.example/api"]
)
def test_a_url_carrying_credentials_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match="credentials") as refusal:
        HttpPostingSystem(url)

    assert "s3cret" not in str(refusal.value)
    assert "token@" not in str(refusal.value)


# TLS: the private CA, and only it


def test_a_server_certificate_from_an_untrusted_ca_is_refused(
    core_banking: CoreBanking, harness: Harness
) -> None:
    # The public CAs do not know the bank's private CA: no posting without the bundle.
    other = LocalCertificateAuthority.generate()
    system = harness.system(core_banking.base_url, ca_bundle_pem=other.ca_pem)

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    assert core_banking.received == []  # nothing left the client


def test_without_a_ca_bundle_the_public_cas_do_not_trust_the_private_one(
    core_banking: CoreBanking,
) -> None:
    system = HttpPostingSystem(core_banking.base_url, attempts=1, timeout_seconds=1.0)

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    assert core_banking.received == []
    system.close()


def test_a_ca_bundle_file_is_trusted_like_the_pem(
    core_banking: CoreBanking,
    harness: Harness,
    authority: LocalCertificateAuthority,
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(authority.ca_pem)
    system = harness.system(core_banking.base_url, ca_bundle_pem=None, ca_bundle_file=str(bundle))

    assert system.post(REQUEST).status is PostingStatus.POSTED


def test_a_ca_bundle_file_of_another_ca_is_refused(
    core_banking: CoreBanking, harness: Harness, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(LocalCertificateAuthority.generate().ca_pem)
    system = harness.system(core_banking.base_url, ca_bundle_pem=None, ca_bundle_file=str(bundle))

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    assert core_banking.received == []


def test_a_missing_ca_bundle_file_fails_when_the_adapter_is_built(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HttpPostingSystem("https://127.0.0.1:1", ca_bundle_file=str(tmp_path / "absent.pem"))


def test_a_ca_bundle_as_pem_and_as_file_is_refused(
    authority: LocalCertificateAuthority, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="not both"):
        HttpPostingSystem(
            "https://127.0.0.1:1",
            ca_bundle_pem=authority.ca_pem,
            ca_bundle_file=str(tmp_path / "ca.pem"),
        )


# Credentials by reference


def test_the_credential_is_sent_in_the_configured_header(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    post(credentials=lambda: "Bearer t0ken", credentials_header="X-Api-Key")

    [seen] = core_banking.received
    assert seen.headers["X-Api-Key"] == "Bearer t0ken"
    assert "Authorization" not in seen.headers


def test_the_credential_is_read_for_every_request(
    core_banking: CoreBanking, harness: Harness
) -> None:
    values = iter(["Bearer one", "Bearer two"])
    system = harness.system(core_banking.base_url, credentials=lambda: next(values))

    system.post(REQUEST)
    system.post(REQUEST)

    assert [seen.headers["Authorization"] for seen in core_banking.received] == [
        "Bearer one",
        "Bearer two",
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_transient_and_forgotten(
    core_banking: CoreBanking, post: Callable[..., Any], status: int
) -> None:
    """A rotated or revoked credential is no verdict on the posting: it comes back later."""
    core_banking.script(Reply(status, {"message": "bad token"}))
    forgotten: list[bool] = []

    with pytest.raises(TransientPostingError, match=str(status)):
        post(
            credentials=lambda: "Bearer old", on_credentials_refused=lambda: forgotten.append(True)
        )

    assert forgotten == [True]
    assert len(core_banking.received) == 1


def test_a_credential_that_cannot_be_read_is_transient_and_nothing_is_sent(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    def unreadable() -> str:
        raise RuntimeError("secrets manager unavailable")

    with pytest.raises(TransientPostingError, match="credentials"):
        post(credentials=unreadable)

    assert core_banking.received == []


# What a 409 means


def test_409_can_mean_a_conflict_refusal(
    core_banking: CoreBanking, post: Callable[..., Any]
) -> None:
    core_banking.script(Reply(409, {"message": "account frozen"}))

    with pytest.raises(PermanentPostingError) as refusal:
        post(on_conflict=ConflictMeaning.CONFLICT)

    assert "409" in str(refusal.value)
    assert "account frozen" in str(refusal.value)


def test_worst_case_counts_every_try_and_the_longest_backoffs() -> None:
    from payment_posting_functions.domain.http_posting import worst_case_seconds

    assert worst_case_seconds(
        attempts=3, timeout_seconds=3.0, connect_timeout_seconds=1.0, backoff_seconds=0.2
    ) == pytest.approx(3 * 4.0 + 0.2 + 0.4)
    assert worst_case_seconds(
        attempts=1, timeout_seconds=2.0, connect_timeout_seconds=1.0, backoff_seconds=5.0
    ) == pytest.approx(3.0)
