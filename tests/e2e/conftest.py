"""End-to-end fixtures: the real stack, synthesized in process, run on the local runtime.

Every runtime of the suite, the CLI's included, has its access decisions recorded, so that
``test_permissions_used.py`` (run last) can derive what each principal really calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from payment_local.access.authorizer import Authorizer
from payment_local.assembly import StackAssembly, check_fresh, load_assembly
from payment_local.runtime import LocalRuntime
from payment_stack import PaymentPostingStack, StageConfig

ROOT = Path(__file__).resolve().parents[2]
RUNS_LAST = "runs_last"
# A test that provokes a refusal on purpose; its runs are not what the stack needs.
DENIALS_EXPECTED = "denials_expected"

# (template the runtime ran, its authorizer, its physical ARNs by logical name), for every
# runtime the suite started. Keys and streams get new ARNs in every run, so a grant is compared
# with the calls of all runs by the logical name of what it names (see ``logical_names``).
RECORDED: list[tuple[dict[str, Any], Authorizer, dict[str, str]]] = []
# Lines for the terminal summary (what a test found worth telling, not failing on).
SUMMARY: list[str] = []
_current: dict[str, bool] = {"denials_expected": False}
# What this session collected and deselected: a grant is compared with the calls of the whole
# end-to-end suite, so a partial run cannot tell an unused grant from an untested path.
_SESSION: dict[str, set[str]] = {"collected": set(), "deselected": set()}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{RUNS_LAST}: needs every other end-to-end test first")
    config.addinivalue_line(
        "markers", f"{DENIALS_EXPECTED}: provokes refusals on purpose; its calls are not recorded"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable sort: the rest keep their order, the marked ones go to the end of the session.
    items.sort(key=lambda item: item.get_closest_marker(RUNS_LAST) is not None)
    _SESSION["collected"].update(item.nodeid for item in items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _SESSION["deselected"].update(item.nodeid for item in items)


def runs_the_whole_suite() -> bool:
    """Every end-to-end module is collected and none of its tests deselected."""
    here = Path(__file__).parent
    modules = {path.name for path in here.glob("test_*.py")}
    collected = {nodeid.split("::")[0].rsplit("/", 1)[-1] for nodeid in _SESSION["collected"]}
    deselected = [nodeid for nodeid in _SESSION["deselected"] if "e2e/" in nodeid]
    return modules <= collected and not deselected


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARY:
        terminalreporter.section("least privilege: granted but never used")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _record_access() -> Iterator[None]:
    original = LocalRuntime.__exit__

    def record_then_exit(self: LocalRuntime, *args: Any) -> None:
        access = getattr(self, "access", None)
        if access is not None and access.enforce and not _current["denials_expected"]:
            RECORDED.append((self.assembly.template, access, logical_names(self)))
        original(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalRuntime, "__exit__", record_then_exit)
        yield


def logical_names(runtime: LocalRuntime) -> dict[str, str]:
    """Each ARN the runtime provisioned, mapped to ``<LogicalId.Attribute>``."""
    return {
        value: f"<{logical_id}.{attribute}>"
        for (logical_id, attribute), value in runtime.resolver.attributes.items()
        if isinstance(value, str) and value.startswith("arn:")
    }


@pytest.fixture(autouse=True)
def _note_expected_denials(request: pytest.FixtureRequest) -> Iterator[None]:
    _current["denials_expected"] = request.node.get_closest_marker(DENIALS_EXPECTED) is not None
    yield
    _current["denials_expected"] = False


def synth_dev(outdir: Path, **extra_context: Any) -> StackAssembly:
    """The dev stage as `make synth` builds it (cdk.json context and ``extra_context``, e.g.
    ``posting="http"``), without bundling the layer."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(
        outdir=str(outdir),
        context={**context, "aws:cdk:bundling-stacks": [], **extra_context},
    )
    config = StageConfig.from_context(app)
    PaymentPostingStack(app, f"PaymentPosting-{config.name}", config=config)
    app.synth()
    loaded = load_assembly(outdir)
    check_fresh(loaded)
    return loaded


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> StackAssembly:
    """The dev stage as `make synth` builds it (cdk.json context), without bundling the layer."""
    return synth_dev(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture
def runtime(assembly: StackAssembly, tmp_path: Path) -> Iterator[LocalRuntime]:
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(assembly, function_log=log) as running,
    ):
        yield running
