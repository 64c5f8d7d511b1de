"""The TLS client certificate: read from its secret's JSON, and loaded into an SSL context
without its key lingering on a file system."""

from __future__ import annotations

import json
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest

from payment_local.tls import LocalCertificateAuthority
from payment_posting_functions.domain.client_certificate import (
    ClientCertificate,
    load_client_certificate,
)


@pytest.fixture(scope="module")
def authority() -> LocalCertificateAuthority:
    return LocalCertificateAuthority.generate(intermediates=1)


@pytest.fixture(scope="module")
def issued(authority: LocalCertificateAuthority) -> tuple[str, str]:
    return authority.issue_client_certificate("posting-function")


class RecordingContext:
    """Stands in for an SSLContext: what load_cert_chain was given, as it was then."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.contents: list[bytes] = []
        self.modes: list[tuple[int, int]] = []

    def load_cert_chain(self, certfile: str, keyfile: Any = None) -> None:
        assert keyfile is None
        self.paths.append(certfile)
        self.contents.append(Path(certfile).read_bytes())
        if not certfile.startswith("/proc/"):
            self.modes.append(
                (
                    stat.S_IMODE(os.stat(certfile).st_mode),
                    stat.S_IMODE(os.stat(Path(certfile).parent).st_mode),
                )
            )


def _secret(**fields: Any) -> str:
    return json.dumps(fields)


# From the secret


def test_the_secret_holds_certificate_chain_and_key(issued: tuple[str, str]) -> None:
    chain, key = issued
    leaf, _, intermediates = chain.partition("-----END CERTIFICATE-----\n")
    leaf += "-----END CERTIFICATE-----\n"

    certificate = ClientCertificate.from_secret_string(
        _secret(certificate=leaf, certificateChain=intermediates, privateKey=key)
    )

    assert certificate.certificate_chain_pem == chain
    assert certificate.private_key_pem == key
    assert ClientCertificate.from_secret_string(
        _secret(certificate=chain, privateKey=key)
    ) == ClientCertificate(chain, key)


def test_the_key_never_shows_in_a_repr(issued: tuple[str, str]) -> None:
    chain, key = issued
    assert "PRIVATE KEY" not in repr(ClientCertificate(chain, key))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON object"),
        ("[1]", "not a JSON object"),
        (_secret(certificate="x"), "lacks certificate or privateKey"),
        (_secret(privateKey="x"), "lacks certificate or privateKey"),
        (_secret(certificate="x", privateKey="y", certificateChain=3), "certificateChain"),
        (_secret(certificate="no pem", privateKey="-----BEGIN PRIVATE KEY-----"), "certificate"),
        (
            _secret(certificate="-----BEGIN CERTIFICATE-----", privateKey="hunter2-secret"),
            "private key",
        ),
        (
            _secret(
                certificate="-----BEGIN CERTIFICATE-----",
                privateKey="-----BEGIN ENCRYPTED PRIVATE KEY-----",
            ),
            "encrypted",
        ),
    ],
)
def test_what_is_no_client_certificate_is_refused_without_quoting_it(
    text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        ClientCertificate.from_secret_string(text)
    assert "hunter2" not in str(refused.value)


# Into the SSL context


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux only")
def test_on_linux_the_key_goes_into_memory_not_a_file_system(issued: tuple[str, str]) -> None:
    chain, key = issued
    context = RecordingContext()

    load_client_certificate(context, ClientCertificate(chain, key))  # type: ignore[arg-type]

    [path] = context.paths
    assert path.startswith("/proc/self/fd/")
    assert context.contents == [(key + chain).encode()]
    assert not os.path.exists(path)  # closed: the memory is freed


def test_elsewhere_a_private_file_holds_the_key_for_the_call_only(
    issued: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    chain, key = issued
    context = RecordingContext()

    load_client_certificate(context, ClientCertificate(chain, key))  # type: ignore[arg-type]

    [path] = context.paths
    assert context.contents == [(key + chain).encode()]
    assert context.modes == [(0o600, 0o700)]
    assert not Path(path).exists()
    assert not Path(path).parent.exists()


@pytest.mark.parametrize("memory", [True, False])
def test_a_real_context_loads_it(
    issued: tuple[str, str], monkeypatch: pytest.MonkeyPatch, memory: bool
) -> None:
    if not memory:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    chain, key = issued
    context = ssl.create_default_context()

    load_client_certificate(context, ClientCertificate(chain, key))


def test_a_key_of_another_certificate_is_refused(
    authority: LocalCertificateAuthority, issued: tuple[str, str]
) -> None:
    chain, _ = issued
    _, other_key = authority.issue_client_certificate("someone else")

    with pytest.raises(ssl.SSLError):
        load_client_certificate(ssl.create_default_context(), ClientCertificate(chain, other_key))
