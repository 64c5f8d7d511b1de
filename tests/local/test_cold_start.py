"""Each local runtime is a new deployment: the handlers' module-level caches start empty, as
in a new Lambda execution environment, though the modules stay imported in this process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from payment_local.assembly import StackAssembly
from payment_local.runtime import LocalRuntime
from tests.local import fixture_handlers
from tests.local.support import HANDLERS, PROJECT_ROOT

CODE_HASH = "c0de" * 16
HANDLER_FILE = Path("tests", "local", "fixture_handlers.py")


def _assembly(tmp_path: Path, setting: str) -> StackAssembly:
    code = tmp_path / f"asset.{CODE_HASH}"
    if not code.exists():
        (code / HANDLER_FILE).parent.mkdir(parents=True)
        shutil.copyfile(PROJECT_ROOT / HANDLER_FILE, code / HANDLER_FILE)
    template: dict[str, Any] = {
        "Resources": {
            "Reader": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"S3Bucket": "assets", "S3Key": f"{CODE_HASH}.zip"},
                    "Handler": f"{HANDLERS}.cached_setting",
                    "Runtime": "python3.11",
                    "Environment": {"Variables": {"SETTING": setting}},
                },
            }
        }
    }
    return StackAssembly(tmp_path, "T", template, {CODE_HASH: code})


def _invoke(assembly: StackAssembly) -> Any:
    with LocalRuntime(assembly) as runtime:
        reader = runtime.topology.functions["Reader"]
        return [reader.invoke({}), reader.invoke({})]


def test_a_second_deployment_does_not_see_what_the_first_cached(tmp_path: Path) -> None:
    assert _invoke(_assembly(tmp_path, "first stack")) == ["first stack", "first stack"]
    assert _invoke(_assembly(tmp_path, "second stack")) == ["second stack", "second stack"]


def test_within_a_run_the_cache_holds(tmp_path: Path) -> None:
    with LocalRuntime(_assembly(tmp_path, "kept")) as runtime:
        reader = runtime.topology.functions["Reader"]
        assert reader.invoke({}) == "kept"
        assert fixture_handlers._setting.cache_info().hits == 0
        assert reader.invoke({}) == "kept"
        assert fixture_handlers._setting.cache_info().hits == 1
