"""End-to-end fixtures: the real stack, synthesized in process, run on the local runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import pytest

from payment_local.assembly import StackAssembly, check_fresh, load_assembly
from payment_local.runtime import LocalRuntime
from payment_stack import PaymentPostingStack, StageConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> StackAssembly:
    """The dev stage as `make synth` builds it (cdk.json context), without bundling the layer."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    config = StageConfig.from_context(app)
    PaymentPostingStack(app, f"PaymentPosting-{config.name}", config=config)
    app.synth()
    loaded = load_assembly(outdir)
    check_fresh(loaded)
    return loaded


@pytest.fixture
def runtime(assembly: StackAssembly, tmp_path: Path) -> Iterator[LocalRuntime]:
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(assembly, function_log=log) as running,
    ):
        yield running
