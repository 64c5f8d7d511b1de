"""A function's layers, locally: Lambda extracts them under /opt; the runtime points a path
under /opt in the function's environment at the same file in the staged layer asset."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from payment_local.assembly import StackAssembly
from payment_local.functions import FunctionError, layer_paths
from payment_local.runtime import LocalRuntime
from tests.local.support import HANDLERS, PROJECT_ROOT

CODE_HASH = "c0de" * 16
FIRST_LAYER = "1a7e" * 16
SECOND_LAYER = "2a7e" * 16
HANDLER_FILE = Path("tests", "local", "fixture_handlers.py")
BUNDLE = "/opt/core-banking-ca/ca-bundle.pem"


def _layer(asset_hash: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::LayerVersion",
        "Properties": {
            "Content": {"S3Bucket": "assets", "S3Key": f"{asset_hash}.zip"},
            "Description": asset_hash,
        },
    }


def _template(file_to_read: str, layers: list[str]) -> dict[str, Any]:
    return {
        "Resources": {
            "Reader": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"S3Bucket": "assets", "S3Key": f"{CODE_HASH}.zip"},
                    "Handler": f"{HANDLERS}.read_named_file",
                    "Runtime": "python3.11",
                    "Layers": [{"Ref": layer} for layer in layers],
                    "Environment": {"Variables": {"FILE_TO_READ": file_to_read}},
                },
            },
            "First": _layer(FIRST_LAYER),
            "Second": _layer(SECOND_LAYER),
        }
    }


@pytest.fixture
def assets(tmp_path: Path) -> dict[str, Path]:
    code = tmp_path / f"asset.{CODE_HASH}"
    (code / HANDLER_FILE).parent.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / HANDLER_FILE, code / HANDLER_FILE)
    staged = {CODE_HASH: code}
    for asset_hash, content in ((FIRST_LAYER, "first"), (SECOND_LAYER, "second")):
        layer = tmp_path / f"asset.{asset_hash}"
        (layer / "core-banking-ca").mkdir(parents=True)
        (layer / "core-banking-ca" / "ca-bundle.pem").write_text(content)
        staged[asset_hash] = layer
    return staged


def _read(assets: dict[str, Path], file_to_read: str, layers: list[str]) -> Any:
    assembly = StackAssembly(
        directory=next(iter(assets.values())).parent,
        stack_name="T",
        template=_template(file_to_read, layers),
        assets=assets,
    )
    with LocalRuntime(assembly) as runtime:
        reader = runtime.topology.functions["Reader"]
        assert reader.environment["FILE_TO_READ"] == file_to_read  # what the template says
        return reader.invoke({})


def test_a_path_under_opt_reads_the_file_of_the_function_layer(assets: dict[str, Path]) -> None:
    assert _read(assets, BUNDLE, ["First"]) == "first"


def test_the_last_layer_holding_the_file_wins_as_lambda_overlays_them(
    assets: dict[str, Path],
) -> None:
    assert _read(assets, BUNDLE, ["First", "Second"]) == "second"
    assert _read(assets, BUNDLE, ["Second", "First"]) == "first"


def test_a_layer_the_function_does_not_have_is_not_reachable(assets: dict[str, Path]) -> None:
    """The file of a layer of the stack that the function lacks fails to open, as on AWS."""
    with pytest.raises(FunctionError) as failed:
        _read(assets, BUNDLE, [])
    assert failed.value.error_type == "FileNotFoundError"


def test_a_path_no_layer_holds_fails_as_on_aws(assets: dict[str, Path]) -> None:
    with pytest.raises(FunctionError) as failed:
        _read(assets, "/opt/core-banking-ca/other.pem", ["First", "Second"])
    assert failed.value.error_type == "FileNotFoundError"


def test_only_values_that_are_paths_under_opt_change(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "a").mkdir(parents=True)
    (layer / "a" / "b.pem").write_text("x")
    environment = {
        "FILE": "/opt/a/b.pem",
        "ESCAPING": "/opt/a/../a/b.pem",
        "ELSEWHERE": "/etc/a/b.pem",
        "PREFIXED": "/optional/a/b.pem",
        "TEXT": "hello /opt/a/b.pem",
    }

    resolved = layer_paths(environment, [layer])

    assert resolved == {**environment, "FILE": str(layer / "a" / "b.pem")}
