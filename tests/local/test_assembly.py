"""Loading a cloud assembly and refusing a stale one, on small fake assemblies."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from payment_local.assembly import AssemblyError, StackAssembly, check_fresh, load_assembly

CODE_HASH = "a" * 64
LAYER_HASH = "b" * 64
HANDLER_SOURCE = "def handler(event, context):\n    return event\n"


@dataclass
class FakeProject:
    root: Path
    cdk_out: Path

    @property
    def manifest(self) -> Path:
        return self.cdk_out / "manifest.json"

    @property
    def staged(self) -> Path:
        return self.cdk_out / f"asset.{CODE_HASH}"

    def load(self) -> StackAssembly:
        return load_assembly(self.cdk_out)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _template(code_hash: str = CODE_HASH) -> dict[str, Any]:
    return {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {
                        "S3Bucket": {"Fn::Sub": "cdk-assets-${AWS::AccountId}-${AWS::Region}"},
                        "S3Key": f"{code_hash}.zip",
                    },
                    "Handler": "handlers.app.handler",
                },
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        }
    }


def _write_stack(cdk_out: Path, name: str, template: dict[str, Any]) -> dict[str, Any]:
    """Write one stack's template and asset manifest; return its manifest artifacts."""
    _write(cdk_out / f"{name}.template.json", json.dumps(template))
    _write(
        cdk_out / f"{name}.assets.json",
        json.dumps(
            {
                "version": "55.0.0",
                "files": {
                    asset_hash: {"source": {"path": f"asset.{asset_hash}", "packaging": "zip"}}
                    for asset_hash in (CODE_HASH, LAYER_HASH)
                },
            }
        ),
    )
    return {
        f"{name}.assets": {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{name}.assets.json"},
        },
        name: {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{name}.template.json"},
            "dependencies": [f"{name}.assets"],
        },
    }


def _synthesize(project: FakeProject, stacks: tuple[str, ...] = ("T",)) -> None:
    """What `cdk synth` leaves behind: the manifest, templates, assets (lambdas copied)."""
    artifacts: dict[str, Any] = {"Tree": {"type": "cdk:tree", "properties": {"file": "t.json"}}}
    for name in stacks:
        artifacts |= _write_stack(project.cdk_out, name, _template())
    shutil.copytree(project.root / "lambdas", project.staged)
    (project.cdk_out / f"asset.{LAYER_HASH}" / "python").mkdir(parents=True)
    _write(project.manifest, json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    # Sources an hour older than the synth, as after a fresh `make synth`.
    an_hour_ago = time.time() - 3600
    for path in project.root.rglob("*"):
        if project.cdk_out not in path.parents and path.is_file():
            os.utime(path, (an_hour_ago, an_hour_ago))


@pytest.fixture
def project(tmp_path: Path) -> FakeProject:
    root = tmp_path / "project"
    _write(root / "app.py", "# the CDK app\n")
    _write(root / "cdk.json", "{}\n")
    _write(root / "payment_stack" / "stack.py", "# the stack\n")
    _write(root / "statemachine" / "flow.asl.json", "{}\n")
    _write(root / "lambdas" / "handlers" / "__init__.py", "")
    _write(root / "lambdas" / "handlers" / "app.py", HANDLER_SOURCE)
    _write(root / "lambdas" / "payments" / "money.py", "CENTS = 100\n")
    fake = FakeProject(root, root / "cdk.out")
    _synthesize(fake)
    return fake


# -- load_assembly ----------------------------------------------------------------------


def test_a_missing_assembly_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match=r"make synth"):
        load_assembly(tmp_path / "cdk.out")


def test_loads_the_only_stack_with_its_template_and_assets(project: FakeProject) -> None:
    assembly = project.load()
    assert assembly.stack_name == "T"
    assert assembly.directory == project.cdk_out
    assert set(assembly.resources) == {"Fn", "Role"}
    assert assembly.assets == {
        CODE_HASH: project.cdk_out / f"asset.{CODE_HASH}",
        LAYER_HASH: project.cdk_out / f"asset.{LAYER_HASH}",
    }
    assert assembly.asset_path(f"{CODE_HASH}.zip") == project.staged
    assert assembly.asset_path(f"some/prefix/{CODE_HASH}.zip") == project.staged


def test_an_asset_the_assembly_does_not_hold_says_to_synthesize(project: FakeProject) -> None:
    with pytest.raises(AssemblyError, match=rf"{'c' * 64}.*make synth"):
        project.load().asset_path(f"{'c' * 64}.zip")


def test_two_stacks_need_a_name(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _write(root / "lambdas" / "handlers" / "app.py", HANDLER_SOURCE)
    two = FakeProject(root, root / "cdk.out")
    _synthesize(two, stacks=("Blue", "Green"))
    with pytest.raises(AssemblyError, match=r"2 stacks \(Blue, Green\).*name the one"):
        two.load()
    assert load_assembly(two.cdk_out, "Green").stack_name == "Green"
    with pytest.raises(AssemblyError, match=r"no stack 'Red'"):
        load_assembly(two.cdk_out, "Red")


# -- check_fresh ------------------------------------------------------------------------


def test_a_fresh_assembly_passes(project: FakeProject) -> None:
    check_fresh(project.load(), project_root=project.root)


def test_caches_and_requirements_do_not_make_it_stale(project: FakeProject) -> None:
    # The code asset leaves these out (the layer is built from the lock), so they never differ.
    _write(project.root / "lambdas" / "handlers" / "__pycache__" / "app.cpython-311.pyc", "x")
    _write(project.root / "lambdas" / "requirements.txt", "boto3\n")
    _write(project.root / "lambdas" / "requirements.lock", "boto3==1.0 --hash=sha256:00\n")
    os.utime(project.root / "lambdas" / "requirements.txt", (0, 0))
    check_fresh(project.load(), project_root=project.root)


def test_a_changed_lambda_file_is_stale_even_with_an_old_mtime(project: FakeProject) -> None:
    source = project.root / "lambdas" / "handlers" / "app.py"
    source.write_text(HANDLER_SOURCE.replace("return event", "return None"))
    os.utime(source, (0, 0))  # the comparison is by content, not by clock
    with pytest.raises(AssemblyError, match=r"lambdas/handlers/app\.py differs.*make synth"):
        check_fresh(project.load(), project_root=project.root)


def test_an_added_lambda_file_is_stale(project: FakeProject) -> None:
    _write(project.root / "lambdas" / "payments" / "new_module.py", "X = 1\n")
    with pytest.raises(AssemblyError, match=r"lambdas/payments/new_module\.py"):
        check_fresh(project.load(), project_root=project.root)


def test_a_removed_lambda_file_is_stale(project: FakeProject) -> None:
    (project.root / "lambdas" / "payments" / "money.py").unlink()
    with pytest.raises(AssemblyError, match=r"lambdas/payments/money\.py"):
        check_fresh(project.load(), project_root=project.root)


@pytest.mark.parametrize(
    "source", ["payment_stack/stack.py", "app.py", "cdk.json", "statemachine/flow.asl.json"]
)
def test_infrastructure_newer_than_the_manifest_is_stale(project: FakeProject, source: str) -> None:
    synthesized_at = project.manifest.stat().st_mtime
    os.utime(project.root / source, (synthesized_at + 10, synthesized_at + 10))
    with pytest.raises(AssemblyError, match=rf"{source} changed after the last synth"):
        check_fresh(project.load(), project_root=project.root)


def test_infrastructure_older_than_the_manifest_is_fresh(project: FakeProject) -> None:
    synthesized_at = project.manifest.stat().st_mtime
    stack = project.root / "payment_stack" / "stack.py"
    os.utime(stack, (synthesized_at - 1, synthesized_at - 1))
    check_fresh(project.load(), project_root=project.root)


def test_a_new_infrastructure_file_after_the_synth_is_stale(project: FakeProject) -> None:
    added = project.root / "payment_stack" / "constructs" / "queue.py"
    _write(added, "# new construct\n")
    synthesized_at = project.manifest.stat().st_mtime
    os.utime(added, (synthesized_at + 5, synthesized_at + 5))
    with pytest.raises(AssemblyError, match=r"payment_stack/constructs/queue\.py"):
        check_fresh(project.load(), project_root=project.root)
