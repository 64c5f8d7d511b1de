"""Session-wide syntheses of the full stack: each stage is synthesized once for every module."""

from __future__ import annotations

import pytest

from payment_stack import PaymentPostingStack
from tests.infra.support import Synthesized, synth_payment_stack


@pytest.fixture(scope="session")
def dev() -> Synthesized:
    """PaymentPosting-dev with the dev settings of cdk.json (sample source, destroy)."""
    stack, template = synth_payment_stack("dev")
    return Synthesized(stack=stack, template=template)


@pytest.fixture(scope="session")
def prod() -> Synthesized:
    """PaymentPosting-prod with the prod settings of cdk.json (no sample source, retain)."""
    stack, template = synth_payment_stack("prod")
    return Synthesized(stack=stack, template=template)


@pytest.fixture(scope="session")
def dev_stack(dev: Synthesized) -> PaymentPostingStack:
    assert isinstance(dev.stack, PaymentPostingStack)
    return dev.stack


@pytest.fixture(scope="session")
def prod_stack(prod: Synthesized) -> PaymentPostingStack:
    assert isinstance(prod.stack, PaymentPostingStack)
    return prod.stack
