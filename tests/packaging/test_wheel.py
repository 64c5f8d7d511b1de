"""The wheel as a user gets it: built, installed in a fresh environment, synthesizing their app.

The wheel is built from a copy of the sources (as ``make dist`` builds it, offline with the
locked setuptools) and installed into a new virtual environment outside the checkout. That
environment sees the project's installed dependencies (CDK, cdk-nag...) through a ``.pth``
line, so nothing is downloaded, but neither the checkout nor its editable install: a ``.pth``
file inside a folder added that way is not executed, so the editable finder stays inactive.
The example app in ``examples/payments_app`` then synthesizes there with the cdk-nag
AwsSolutions pack, and a deliberately non-compliant app shows the pack does fail a synth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payments_app"
# What pyproject.toml builds the wheel from.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "payment_stack",
    "payment_local",
    "payment_cost",
    "lambdas",
    "statemachine",
)
PACKAGES = ("payment_stack", "payment_local", "payment_cost", "payment_posting_functions")

PROBE = """
import json
import payment_posting_functions, payment_stack
from payment_stack.assets import FUNCTIONS_DIR
from payment_stack.lambda_package import LOCK
from payment_stack.rules_engine import DEFAULT_DEFINITION
print(json.dumps({
    "payment_stack": payment_stack.__file__,
    "payment_posting_functions": payment_posting_functions.__file__,
    "functions_dir": str(FUNCTIONS_DIR),
    "lock": str(LOCK) if LOCK.is_file() else None,
    "default_definition": str(DEFAULT_DEFINITION) if DEFAULT_DEFINITION.is_file() else None,
}))
"""

NON_COMPLIANT_APP = """
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

app = cdk.App()
sqs.Queue(cdk.Stack(app, "NonCompliant"), "QueueWithoutDeadLetterQueue")
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
app.synth()
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    site_packages: Path
    environment: dict[str, str]

    def run(self, *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(self.python), *args],
            cwd=cwd,
            env={**self.environment, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _ignore_caches(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in {"__pycache__", ".mypy_cache"} or n.endswith(".pyc")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=_ignore_caches)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = [
        *pip, "wheel", "--quiet", "--no-index", "--no-deps", "--no-build-isolation",
        "--check-build-dependencies", "--wheel-dir", str(work / "dist"), str(source),
    ]  # fmt: skip
    subprocess.run(build, check=True)  # noqa: S603 - fixed argv, no shell
    (wheel,) = (work / "dist").glob("*.whl")

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    install = [*pip, "--python", str(python), "install", "--quiet", "--no-index", "--no-deps"]
    subprocess.run([*install, str(wheel)], check=True)  # noqa: S603 - fixed argv, no shell
    site_packages = Path(
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The project's dependencies, offline: the folder only, whose own .pth files (the editable
    # install's finder among them) Python does not execute.
    (site_packages / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV", "CDK_CONTEXT_JSON", "CDK_OUTDIR"}
    }
    node_bin = ROOT / ".venv" / "node-bin"  # jsii runs node; the project's, as conftest sets
    environment["PATH"] = f"{node_bin}{os.pathsep}{environment.get('PATH', '')}"
    return Installed(wheel, python, site_packages.resolve(), environment)


def test_the_wheel_carries_the_asset_and_no_generic_top_level_names(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    top_level = {name.split("/")[0] for name in names if not name.endswith(".dist-info/RECORD")}
    assert {n for n in top_level if not n.endswith(".dist-info")} == set(PACKAGES)
    for package, folder in [
        ("payment_stack", ROOT / "payment_stack"),
        ("payment_local", ROOT / "payment_local"),
        ("payment_cost", ROOT / "payment_cost"),
        ("payment_posting_functions", ROOT / "lambdas" / "payment_posting_functions"),
    ]:
        modules = {f"{package}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*.py")}
        assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    assert "payment_cost/prices/us-east-1.json" in names
    assert {
        "payment_stack/statemachine/business_rules.asl.json",
        "payment_stack/lambda_layer/requirements.txt",
        "payment_stack/lambda_layer/requirements.lock",
    } <= names


def test_the_constructs_import_from_the_installed_wheel(
    installed: Installed, tmp_path: Path
) -> None:
    result = installed.run("-c", PROBE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    for name in ("payment_stack", "payment_posting_functions", "functions_dir"):
        assert Path(found[name]).resolve().is_relative_to(installed.site_packages), found
    for name in ("lock", "default_definition"):
        assert found[name], f"{name} not found in the installed package: {found}"
        assert Path(found[name]).resolve().is_relative_to(installed.site_packages), found


def test_the_example_synthesizes_from_the_wheel_with_cdk_nag(
    installed: Installed, tmp_path: Path
) -> None:
    app = tmp_path / "payments_app"
    shutil.copytree(EXAMPLE, app, ignore=_ignore_caches)
    outdir = tmp_path / "cdk.out"
    # The layer's pip install for the Lambda platform needs the package index; the code asset,
    # the template and the cdk-nag checks do not.
    no_bundling = json.dumps({"aws:cdk:bundling-stacks": []})
    result = installed.run("app.py", cwd=app, CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=no_bundling)
    assert result.returncode == 0, result.stderr[-4000:]

    template = json.loads((outdir / "ExamplePayments.template.json").read_text())
    resources = template["Resources"].values()
    handlers = {
        r["Properties"]["Handler"] for r in resources if r["Type"] == "AWS::Lambda::Function"
    }
    assert handlers == {
        "payment_posting_functions.handlers.dedup.handler",
        "payment_posting_functions.handlers.posting.handler",
    }
    # The poster posts to the core system over HTTPS with the token by reference: no ledger.
    (poster,) = [
        r
        for r in resources
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"].endswith(".posting.handler")
    ]
    environment = poster["Properties"]["Environment"]["Variables"]
    assert environment["CORE_BANKING_URL"] == "https://core.bank.example/api"
    assert "CORE_BANKING_SECRET_ARN" in environment
    tables = [r for r in resources if r["Type"] == "AWS::DynamoDB::GlobalTable"]
    assert len(tables) == 4  # transactions, dedup, quarantine, idempotency: no ledger table
    (machine,) = [r for r in resources if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert "Our rules" in json.dumps(machine["Properties"]["DefinitionString"])
    # The function code is the installed package alone, not the rest of site-packages.
    staged = {path.name for path in outdir.glob("asset.*/*")}
    assert "payment_posting_functions" in staged
    assert not staged & {"aws_cdk", "cdk_nag", "jsii", "payment_stack"}


def test_the_same_registration_fails_a_non_compliant_app(
    installed: Installed, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(NON_COMPLIANT_APP)
    result = installed.run("app.py", cwd=tmp_path, CDK_OUTDIR=str(tmp_path / "cdk.out"))
    assert result.returncode != 0
    assert "AwsSolutions-SQS3" in result.stdout + result.stderr
