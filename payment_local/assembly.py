"""Reading a synthesized cloud assembly (``cdk.out``): the template and the assets it names.

The local runtime runs what ``cdk synth`` wrote, not what the source says now, so it refuses an
assembly that is missing or older than the source: running stale code would demonstrate
something that would not deploy.
"""

from __future__ import annotations

import filecmp
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# What the synthesized template is made from; a change to any of these needs a new synth.
INFRASTRUCTURE_SOURCES = ("app.py", "cdk.json", "payment_stack", "statemachine")
LAMBDA_SOURCE = "lambdas"
_IGNORED = {"__pycache__", ".mypy_cache", "requirements.txt", "requirements.lock"}


class AssemblyError(Exception):
    """The cloud assembly cannot be run; the message says what to do."""


@dataclass(frozen=True)
class StackAssembly:
    """One stack of a cloud assembly: its name, template and asset folders by hash."""

    directory: Path
    stack_name: str
    template: dict[str, Any]
    assets: dict[str, Path]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        return resources

    def asset_path(self, object_key: str) -> Path:
        """The staged folder of the asset a template S3Key (``<hash>.zip``) refers to."""
        asset_hash = object_key.split("/")[-1].removesuffix(".zip")
        try:
            return self.assets[asset_hash]
        except KeyError:
            raise AssemblyError(
                f"the template refers to asset {asset_hash}, which {self.directory} does not "
                "hold; run `make synth` again"
            ) from None


def load_assembly(directory: Path, stack_name: str | None = None) -> StackAssembly:
    """Load a stack from ``directory`` (default: the only stack in it)."""
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise AssemblyError(
            f"no cloud assembly at {directory}: run `make synth` first (it writes cdk.out)"
        )
    manifest = json.loads(manifest_file.read_text())
    stacks = {
        name: artifact
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    }
    if stack_name is None:
        if len(stacks) != 1:
            raise AssemblyError(
                f"{directory} holds {len(stacks)} stacks ({', '.join(sorted(stacks))}); "
                "name the one to run"
            )
        stack_name = next(iter(stacks))
    if stack_name not in stacks:
        raise AssemblyError(f"{directory} has no stack {stack_name!r}")
    properties = stacks[stack_name]["properties"]
    template = json.loads((directory / properties["templateFile"]).read_text())
    assets: dict[str, Path] = {}
    for name in stacks[stack_name].get("dependencies", []):
        artifact = manifest["artifacts"].get(name, {})
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        asset_manifest = json.loads((directory / artifact["properties"]["file"]).read_text())
        for asset_hash, asset in asset_manifest.get("files", {}).items():
            assets[asset_hash] = directory / asset["source"]["path"]
    return StackAssembly(directory, stack_name, template, assets)


def check_fresh(assembly: StackAssembly, project_root: Path = PROJECT_ROOT) -> None:
    """Refuse an assembly older than the source it was synthesized from.

    The Lambda code is compared file by file with its staged asset (exact, whatever the
    clocks say); the infrastructure sources by modification time against the manifest.
    """
    lambdas = project_root / LAMBDA_SOURCE
    code_assets = _code_assets(assembly)
    if lambdas.is_dir() and code_assets:
        for asset in code_assets:
            difference = _first_difference(lambdas, asset)
            if difference:
                raise AssemblyError(
                    f"cdk.out is stale: lambdas/{difference} differs from what was "
                    "synthesized; run `make synth`"
                )
    synthesized_at = (assembly.directory / "manifest.json").stat().st_mtime
    for name in INFRASTRUCTURE_SOURCES:
        for path in _files(project_root / name):
            if path.stat().st_mtime > synthesized_at:
                relative = path.relative_to(project_root)
                raise AssemblyError(
                    f"cdk.out is stale: {relative} changed after the last synth; run `make synth`"
                )


def _code_assets(assembly: StackAssembly) -> list[Path]:
    paths = set()
    for resource in assembly.resources.values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        key = resource["Properties"].get("Code", {}).get("S3Key")
        if isinstance(key, str):
            paths.add(assembly.asset_path(key))
    return sorted(paths)


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not _IGNORED.intersection(path.relative_to(root).parts)
    ]


def _first_difference(source: Path, staged: Path) -> str | None:
    """The first file (relative path) that differs between the two trees, if any."""
    source_files = {p.relative_to(source) for p in _files(source)}
    staged_files = {p.relative_to(staged) for p in _files(staged)}
    for relative in sorted(source_files ^ staged_files):
        return str(relative)
    for relative in sorted(source_files):
        if not filecmp.cmp(source / relative, staged / relative, shallow=False):
            return str(relative)
    return None
