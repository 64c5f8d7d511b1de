"""pip refuses what the lock does not vouch for, on both install paths: make's virtual
environment and the Lambda layer built at synth.

Offline: each test makes its own wheels and points pip at them (``--no-index --find-links``)
from the lock itself, so no package index is reached. The real locks are installed by
``make install`` and ``make synth``, which CI runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from payment_stack import lambda_package
from tests.supply_chain.support import ROOT, Wheel, build_wheel, offline_lock

_MISMATCH = "THESE PACKAGES DO NOT MATCH THE HASHES"
_MISSING = "Hashes are required in --require-hashes mode"
_UNPINNED = "In --require-hashes mode, all requirements must have their versions pinned"
_WRONG = "0" * 64


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Wheel]:
    directory = tmp_path / "wheels"
    return {
        "probe": build_wheel(directory, "supply-probe", "1.0"),
        "needs": build_wheel(directory, "supply-needs", "1.0", requires=("supply-probe",)),
        "good": build_wheel(directory, "supply-good", "1.0"),
    }


def _bundle(monkeypatch: pytest.MonkeyPatch, lock: Path, output: Path) -> None:
    monkeypatch.setattr(lambda_package, "LOCK", lock)
    lambda_package.PipInstallForLambda().try_bundle(str(output))


def test_the_layer_build_installs_a_lock_whose_hashes_match(
    tmp_path: Path, wheels: dict[str, Wheel], monkeypatch: pytest.MonkeyPatch
) -> None:
    probe, needs = wheels["probe"], wheels["needs"]
    lock = offline_lock(
        tmp_path / "requirements.lock",
        probe.path.parent,
        f"{needs.requirement} --hash=sha256:{needs.sha256}",
        f"{probe.requirement} --hash=sha256:{probe.sha256}",
    )
    _bundle(monkeypatch, lock, tmp_path / "out")
    assert (tmp_path / "out" / "python" / "supply_probe" / "__init__.py").is_file()
    assert (tmp_path / "out" / "python" / "supply_needs" / "__init__.py").is_file()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(case, expected, id=case)
        for case, expected in [
            ("a wrong hash", _MISMATCH),
            ("a dependency the lock does not hold", _UNPINNED),
            ("a requirement without a hash", _MISSING),
            # What --require-hashes adds: one hash anywhere turns checking on by itself.
            ("a lock without any hash", _MISSING),
        ]
    ],
)
def test_the_layer_build_refuses(
    case: str,
    expected: str,
    tmp_path: Path,
    wheels: dict[str, Wheel],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    probe, needs = wheels["probe"], wheels["needs"]
    lines = {
        "a wrong hash": [f"{probe.requirement} --hash=sha256:{_WRONG}"],
        "a dependency the lock does not hold": [
            f"{needs.requirement} --hash=sha256:{needs.sha256}"
        ],
        "a requirement without a hash": [
            f"{needs.requirement} --hash=sha256:{needs.sha256}",
            probe.requirement,
        ],
        "a lock without any hash": [probe.requirement],
    }[case]
    lock = offline_lock(tmp_path / "requirements.lock", probe.path.parent, *lines)
    with pytest.raises(subprocess.CalledProcessError):
        _bundle(monkeypatch, lock, tmp_path / "out")
    assert expected in capfd.readouterr().err
    assert not (tmp_path / "out" / "python" / "supply_probe").exists()


@pytest.mark.parametrize(
    ("hashed", "expected"),
    [
        pytest.param(f" --hash=sha256:{_WRONG}", _MISMATCH, id="a wrong hash"),
        pytest.param("", _MISSING, id="a lock without any hash"),
    ],
)
def test_make_refuses_a_tampered_development_lock(
    hashed: str, expected: str, tmp_path: Path, wheels: dict[str, Wheel]
) -> None:
    """The venv recipe itself, run on a copy of the Makefile: the bootstrap lock's wheel, whose
    hash matches, is installed; the development lock's, with a wrong hash or none, stops it."""
    good, probe = wheels["good"], wheels["probe"]
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project)
    shutil.copy(ROOT / "pyproject.toml", project)
    offline_lock(
        project / "requirements-bootstrap.lock",
        good.path.parent,
        f"{good.requirement} --hash=sha256:{good.sha256}",
    )
    offline_lock(
        project / "requirements-dev.lock",
        probe.path.parent,
        f"{probe.requirement}{hashed}",
    )
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["make", "-C", str(project), ".venv/.installed", f"PYTHON={sys.executable}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    assert result.returncode != 0
    assert expected in result.stderr
    site_packages = list((project / ".venv" / "lib").glob("python3.*/site-packages"))
    assert len(site_packages) == 1
    assert (site_packages[0] / "supply_good").is_dir()
    assert not (site_packages[0] / "supply_probe").exists()
    assert not (project / ".venv" / ".installed").exists()


def test_every_pip_install_make_runs_for_the_venv_checks_hashes_or_downloads_nothing() -> None:
    # make -n prints the recipe without running it; -B as if the venv were out of date.
    printed = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["make", "-C", str(ROOT), "-n", "-B", ".venv/.installed"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MAKEFLAGS": ""},
    ).stdout
    commands = [shlex.split(line) for line in printed.splitlines() if not line.startswith("#")]
    installs = [argv for argv in commands if "pip" in argv and "install" in argv]
    assert len(installs) == 3
    for argv in installs:
        if "-e" in argv:
            # The project itself: no index to download from, no dependencies, no build
            # environment (whose setuptools would come unchecked).
            assert {"--no-index", "--no-deps", "--no-build-isolation"} <= set(argv), argv
        else:
            assert {"--require-hashes", "--only-binary=:all:"} <= set(argv), argv
            assert argv[argv.index("-r") + 1].endswith(".lock"), argv
