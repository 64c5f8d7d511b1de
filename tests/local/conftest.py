"""Fixtures for the local-runtime tests: moto, clients, and clean fixture handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from payment_local.clients import AwsClients
from tests.local import fixture_handlers
from tests.local.support import REGION


@pytest.fixture(autouse=True)
def _clean_handlers() -> Iterator[None]:
    fixture_handlers.reset()
    yield
    fixture_handlers.reset()


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    """Clients on a fresh moto (no Step Functions execution)."""
    with mock_aws():
        yield AwsClients(REGION)
