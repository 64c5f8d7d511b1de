"""The README's own example of the constructs in a user's app synthesizes, cdk-nag clean."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.support import ROOT

pytestmark = pytest.mark.slow


def _example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Using the constructs in your own stack") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section has no python example"
    return match.group(1)


def _run(code: str, outdir: Path) -> None:
    # As a user runs it; only where it writes changes, and the layer is not bundled (the CLI's
    # environment variables would not reach the jsii process here).
    assert code.count("app = cdk.App()") == 1
    code = code.replace(
        "app = cdk.App()",
        f"app = cdk.App(outdir={str(outdir)!r}, context={{'aws:cdk:bundling-stacks': []}})",
    )
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102


def test_the_readme_example_synthesizes_with_every_pack_passing(tmp_path: Path) -> None:
    _run(_example(), tmp_path)

    assert (tmp_path / "MyPayments.template.json").is_file()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [p for p in report["pluginReports"] if p["conclusion"] != "success"] == []


def test_without_its_acknowledgement_the_example_fails_the_packs(tmp_path: Path) -> None:
    # The acknowledgement is needed, so it is true of the example, and the packs really run.
    code = _example()
    acknowledgement = "        acknowledge_inline_policy(writer)\n"
    assert acknowledgement in code
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _run(code.replace(acknowledgement, ""), tmp_path)
