"""Mutual TLS with the core system: the posting function presents a client certificate kept
in Secrets Manager, read by reference like the token; a handshake the core system refuses is
no verdict on the posting (the message returns to the queue), and makes the certificate be
read again, as a 401 does the token."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import boto3
import pytest

from payment_local.core_banking import CoreBankingServer, core_banking_server
from payment_local.tls import LocalCertificateAuthority
from payment_posting_functions.domain.client_certificate import ClientCertificate
from payment_posting_functions.domain.http_posting import HttpPostingSystem
from payment_posting_functions.domain.posting import PostingStatus, TransientPostingError
from payment_posting_functions.handlers import posting
from tests.handlers.test_posting_over_http import REQUEST, TOKEN

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture(scope="module")
def authority() -> LocalCertificateAuthority:
    return LocalCertificateAuthority.generate(intermediates=1)


@pytest.fixture(scope="module")
def stranger() -> LocalCertificateAuthority:
    """A CA the core system does not know."""
    return LocalCertificateAuthority.generate(name="another CA")


@pytest.fixture
def server(authority: LocalCertificateAuthority) -> Iterator[CoreBankingServer]:
    with core_banking_server(authority, require_client_certificates=True) as running:
        running.state.expected_credential = f"Bearer {TOKEN}"
        yield running


def certificate(authority: LocalCertificateAuthority, name: str) -> ClientCertificate:
    return ClientCertificate(*authority.issue_client_certificate(name))


def secret_json(authority: LocalCertificateAuthority, name: str) -> str:
    chain, key = authority.issue_client_certificate(name)
    return json.dumps({"certificate": chain, "privateKey": key})


@pytest.fixture
def systems() -> Iterator[Callable[..., HttpPostingSystem]]:
    made: list[HttpPostingSystem] = []

    def system(server: CoreBankingServer, **options: object) -> HttpPostingSystem:
        options.setdefault("credentials", lambda: f"Bearer {TOKEN}")
        options.setdefault("sleep", lambda _: None)
        made.append(
            HttpPostingSystem(server.url, ca_bundle_pem=server.ca_pem, **options)  # type: ignore[arg-type]
        )
        return made[-1]

    yield system
    for each in made:
        each.close()


# The adapter


def test_the_client_certificate_is_presented_and_the_posting_goes_through(
    server: CoreBankingServer,
    authority: LocalCertificateAuthority,
    systems: Callable[..., HttpPostingSystem],
) -> None:
    client = certificate(authority, "posting-function")
    system = systems(server, client_certificate=lambda: client)

    assert system.post(REQUEST).status is PostingStatus.POSTED
    assert server.state.client_certificates == ["posting-function"]


def test_without_a_client_certificate_the_handshake_is_refused_and_nothing_is_sent(
    server: CoreBankingServer, systems: Callable[..., HttpPostingSystem]
) -> None:
    """Transient (no PostingFailed: a certificate is no verdict on the transaction), and not
    retried within the call: the queue brings the message back, then its dead-letter queue."""
    system = systems(server, attempts=3)

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    assert server.state.requests == 0
    assert server.state.handshakes_refused() == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"]


def test_a_refused_client_certificate_is_forgotten(
    server: CoreBankingServer,
    stranger: LocalCertificateAuthority,
    systems: Callable[..., HttpPostingSystem],
) -> None:
    forgotten: list[bool] = []
    client = certificate(stranger, "not-known-here")
    system = systems(
        server,
        client_certificate=lambda: client,
        on_client_certificate_refused=lambda: forgotten.append(True),
    )

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    assert forgotten == [True]
    assert server.state.requests == 0
    assert server.state.handshakes_refused() == ["CERTIFICATE_VERIFY_FAILED"]


def test_an_untrusted_server_is_not_blamed_on_the_client_certificate(
    server: CoreBankingServer,
    authority: LocalCertificateAuthority,
    stranger: LocalCertificateAuthority,
) -> None:
    forgotten: list[bool] = []
    client = certificate(authority, "posting-function")
    system = HttpPostingSystem(
        server.url,
        ca_bundle_pem=stranger.ca_pem,
        client_certificate=lambda: client,
        on_client_certificate_refused=lambda: forgotten.append(True),
    )

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    assert forgotten == []
    system.close()


def test_a_rotated_certificate_is_used_from_the_next_posting_on(
    server: CoreBankingServer,
    authority: LocalCertificateAuthority,
    systems: Callable[..., HttpPostingSystem],
) -> None:
    current = [certificate(authority, "before-rotation")]
    system = systems(server, client_certificate=lambda: current[0])
    system.post(REQUEST)

    current[0] = certificate(authority, "after-rotation")
    system.post(REQUEST)
    system.post(REQUEST)

    assert server.state.client_certificates == [
        "before-rotation",
        "after-rotation",
        "after-rotation",
    ]


def test_a_certificate_that_cannot_be_read_is_transient_and_nothing_is_sent(
    server: CoreBankingServer, systems: Callable[..., HttpPostingSystem]
) -> None:
    def unreadable() -> ClientCertificate:
        raise RuntimeError("secrets manager unavailable")

    with pytest.raises(TransientPostingError, match="client certificate could not be read"):
        systems(server, client_certificate=unreadable).post(REQUEST)

    assert server.state.requests == 0
    assert server.state.refused_handshakes == []


def test_a_key_that_does_not_match_is_transient_and_forgotten(
    server: CoreBankingServer,
    authority: LocalCertificateAuthority,
    systems: Callable[..., HttpPostingSystem],
) -> None:
    chain, _ = authority.issue_client_certificate("posting-function")
    _, other_key = authority.issue_client_certificate("someone else")
    forgotten: list[bool] = []
    system = systems(
        server,
        client_certificate=lambda: ClientCertificate(chain, other_key),
        on_client_certificate_refused=lambda: forgotten.append(True),
    )

    with pytest.raises(TransientPostingError, match="could not be loaded"):
        system.post(REQUEST)

    assert forgotten == [True]
    assert server.state.refused_handshakes == []


def test_a_pool_of_ones_own_and_a_client_certificate_are_refused(
    authority: LocalCertificateAuthority,
) -> None:
    import urllib3

    client = certificate(authority, "x")
    with pytest.raises(ValueError, match="not both"):
        HttpPostingSystem(
            "https://127.0.0.1:1", pool=urllib3.PoolManager(), client_certificate=lambda: client
        )


# As the construct configures it: the certificate by reference from Secrets Manager


@pytest.fixture
def environment(
    aws: None,
    server: CoreBankingServer,
    authority: LocalCertificateAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    secrets = boto3.client("secretsmanager")
    token_arn = secrets.create_secret(Name="core-banking-token", SecretString=TOKEN)["ARN"]
    certificate_arn: str = secrets.create_secret(
        Name="core-banking-client-certificate",
        SecretString=secret_json(authority, "posting-function"),
    )["ARN"]
    for name, value in {
        "POSTING_SYSTEM": "http",
        "CORE_BANKING_URL": server.url,
        "CORE_BANKING_CA_BUNDLE": server.ca_pem,
        "CORE_BANKING_SECRET_ARN": token_arn,
        "CORE_BANKING_CREDENTIALS_PREFIX": "Bearer ",
        "CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN": certificate_arn,
        "CORE_BANKING_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    posting.posting_system_for.cache_clear()
    yield certificate_arn
    posting.posting_system_for.cache_clear()


def test_the_function_reads_the_certificate_by_reference_and_posts_over_mutual_tls(
    environment: str, server: CoreBankingServer
) -> None:
    _, system = posting.posting_system()

    assert system.post(REQUEST).status is PostingStatus.POSTED
    assert server.state.client_certificates == ["posting-function"]


def test_a_certificate_refused_then_rotated_is_read_again_at_once(
    environment: str,
    server: CoreBankingServer,
    stranger: LocalCertificateAuthority,
    authority: LocalCertificateAuthority,
) -> None:
    """As a 401 does the token: the refused certificate is not kept for its five minutes."""
    secrets = boto3.client("secretsmanager")
    secrets.put_secret_value(SecretId=environment, SecretString=secret_json(stranger, "old"))
    _, system = posting.posting_system()
    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)

    secrets.put_secret_value(SecretId=environment, SecretString=secret_json(authority, "new"))

    assert system.post(REQUEST).status is PostingStatus.POSTED
    assert server.state.client_certificates == ["new"]


def test_the_certificate_is_cached_and_read_again_after_its_max_age() -> None:
    reads: list[str] = []
    authority = LocalCertificateAuthority.generate()
    now = [0.0]

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 (boto3's name)
            reads.append(SecretId)
            return {"SecretString": secret_json(authority, f"read-{len(reads)}")}

    source = posting.SecretClientCertificate(
        "arn:certificate", client=Secrets(), max_age_seconds=60, clock=lambda: now[0]
    )

    first = source()
    assert source() is first
    now[0] = 61.0
    assert source() != first
    source.forget()
    source()
    assert reads == ["arn:certificate"] * 3
