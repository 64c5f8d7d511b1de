"""The posting function's HTTP adapter as the construct configures it: from its environment,
with the credential read by reference from Secrets Manager, over TLS to a private CA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from payment_local.core_banking import CoreBankingServer, core_banking_server
from payment_posting_functions.domain.http_posting import HttpPostingSystem
from payment_posting_functions.domain.money import Money
from payment_posting_functions.domain.posting import (
    Direction,
    PermanentPostingError,
    PostingRequest,
    PostingStatus,
    TransientPostingError,
)
from payment_posting_functions.handlers import posting

TOKEN = "t0ken-from-the-core-team"
REQUEST = PostingRequest(
    transaction_id="txn-http-1",
    account_id="acct-1",
    counter_account_id="acct-clearing",
    amount=Money(amount=1_000, currency="EUR"),
    direction=Direction.DEBIT,
)


@pytest.fixture
def server() -> Iterator[CoreBankingServer]:
    with core_banking_server() as running:
        running.state.expected_credential = f"Bearer {TOKEN}"
        yield running


@pytest.fixture
def secret_arn(aws: None) -> str:
    arn: str = boto3.client("secretsmanager").create_secret(
        Name="core-banking", SecretString=TOKEN
    )["ARN"]
    return arn


@pytest.fixture
def environment(
    server: CoreBankingServer, secret_arn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    for name, value in {
        "POSTING_SYSTEM": "http",
        "CORE_BANKING_URL": server.url,
        "CORE_BANKING_CA_BUNDLE": server.ca_pem,
        "CORE_BANKING_SECRET_ARN": secret_arn,
        "CORE_BANKING_CREDENTIALS_PREFIX": "Bearer ",
        "CORE_BANKING_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    posting.posting_system_for.cache_clear()
    yield
    posting.posting_system_for.cache_clear()


def test_posts_over_tls_with_the_secret_as_bearer_token(
    environment: None, server: CoreBankingServer
) -> None:
    kind, system = posting.posting_system()

    assert kind == "http"
    assert system.post(REQUEST).status is PostingStatus.POSTED
    assert system.post(REQUEST).status is PostingStatus.ALREADY_POSTED
    assert list(server.state.postings) == [REQUEST.transaction_id]
    assert server.state.refused_credentials == 0


def test_a_wrong_secret_is_refused_by_the_core_system_and_stays_transient(
    environment: None, server: CoreBankingServer, secret_arn: str
) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString="wrong")
    _, system = posting.posting_system()

    with pytest.raises(TransientPostingError, match="401"):
        system.post(REQUEST)

    assert server.state.postings == {}


def test_the_ca_bundle_file_the_construct_names_is_trusted(
    environment: None,
    server: CoreBankingServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """What the construct gives for a bundle known at synth: a file path, not the PEM."""
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(server.ca_pem)
    monkeypatch.delenv("CORE_BANKING_CA_BUNDLE")
    monkeypatch.setenv("CORE_BANKING_CA_BUNDLE_FILE", str(bundle))
    _, system = posting.posting_system()

    assert system.post(REQUEST).status is PostingStatus.POSTED


def test_without_a_ca_bundle_the_private_ca_is_not_trusted(
    environment: None, server: CoreBankingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CORE_BANKING_CA_BUNDLE")
    _, system = posting.posting_system()

    with pytest.raises(TransientPostingError, match="SSLError"):
        system.post(REQUEST)
    assert server.state.requests == 0


def test_409_as_conflict_from_the_environment(
    environment: None, server: CoreBankingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORE_BANKING_409_MEANS", "conflict")
    _, system = posting.posting_system()
    system.post(REQUEST)

    with pytest.raises(PermanentPostingError, match="409"):
        system.post(REQUEST)


def test_the_timeouts_and_attempts_come_from_the_environment(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORE_BANKING_ATTEMPTS", "4")
    monkeypatch.setenv("CORE_BANKING_TIMEOUT_SECONDS", "2.5")
    _, system = posting.posting_system()

    assert isinstance(system, HttpPostingSystem)
    assert system._attempts == 4
    assert system._timeout.read_timeout == 2.5


class CountingSecrets:
    def __init__(self) -> None:
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.reads += 1
        return {"SecretString": f"value-{self.reads}"}


def test_the_secret_is_read_once_then_cached_until_it_ages_or_is_forgotten() -> None:
    client = CountingSecrets()
    now = [0.0]
    value = posting.SecretHeaderValue(
        "arn:secret", "Bearer ", client=client, max_age_seconds=60, clock=lambda: now[0]
    )

    assert value() == "Bearer value-1"
    assert value() == "Bearer value-1"
    assert client.reads == 1
    now[0] = 61.0
    assert value() == "Bearer value-2"
    value.forget()
    assert value() == "Bearer value-3"
    assert client.reads == 3


def test_an_empty_secret_is_an_error_not_an_empty_header() -> None:
    class Empty:
        def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803
            return {"SecretBinary": b"x"}

    with pytest.raises(ValueError, match="no string"):
        posting.SecretHeaderValue("arn:secret", client=Empty())()


def test_each_configuration_gets_its_own_adapter_and_keeps_it(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local runtime runs stack after stack in one process: a cached adapter must not
    outlive the configuration it was built for (on Lambda, the environment never changes)."""
    _, first = posting.posting_system()
    assert posting.posting_system()[1] is first
    monkeypatch.setenv("CORE_BANKING_URL", "https://127.0.0.1:1")

    assert posting.posting_system()[1] is not first
