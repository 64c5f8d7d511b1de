"""The lock files: complete, hashed, in step with the hand-edited pins, and the layer's resolved
for the platform it deploys to. Regenerate them with ``make lock`` (docs/adr/0012)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from payment_stack.lambda_package import ARCHITECTURE, LOCK, RUNTIME
from tests.supply_chain.support import (
    BOOTSTRAP_LOCK,
    DEV_LOCK,
    LAYER_LOCK,
    LOCKS,
    ROOT,
    input_pins,
    locked_requirements,
    locked_versions,
)

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_every_locked_requirement_is_pinned_and_carries_sha256_hashes(lock: Path) -> None:
    # locked_requirements refuses any line that is not `name==version`: no options (an index
    # URL, find-links, an editable path) and no range can hide in a lock.
    requirements = locked_requirements(lock)
    assert requirements
    unhashed = [r.name for r in requirements if not r.hashes]
    assert not unhashed, f"{lock.name} has no hash for {unhashed}: run `make lock`"
    for requirement in requirements:
        assert all(_SHA256.fullmatch(digest) for digest in requirement.hashes), requirement.line


@pytest.mark.parametrize(
    ("pins", "lock"),
    [
        (ROOT / "requirements-bootstrap.txt", BOOTSTRAP_LOCK),
        (ROOT / "requirements-dev.txt", DEV_LOCK),
        (ROOT / "lambdas" / "requirements.txt", LAYER_LOCK),
    ],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_every_hand_edited_pin_is_locked_at_its_version(pins: Path, lock: Path) -> None:
    wanted = input_pins(pins)
    locked = locked_versions(lock)
    stale = {
        name: (version, locked.get(name))
        for name, version in wanted.items()
        if locked.get(name) != version
    }
    assert not stale, f"{lock.name} is stale (pin, locked): {stale}; run `make lock`"


def test_the_dev_lock_covers_every_pin_of_the_runtime_and_the_layer() -> None:
    # requirements-dev.txt includes them; a lost `-r` line would drop them from the venv.
    wanted = input_pins(ROOT / "requirements.txt") | input_pins(ROOT / "lambdas/requirements.txt")
    assert wanted.items() <= locked_versions(DEV_LOCK).items()


def test_the_layer_deploys_the_versions_the_tests_ran_against() -> None:
    dev = locked_versions(DEV_LOCK)
    differing = {
        name: (version, dev.get(name))
        for name, version in locked_versions(LAYER_LOCK).items()
        if dev.get(name) != version
    }
    assert not differing, f"layer lock vs dev lock: {differing}; run `make lock`"


def test_the_layer_lock_is_resolved_for_the_lambda_runtime_and_architecture() -> None:
    # uv writes the command into the lock's header; the layer build installs for RUNTIME and
    # ARCHITECTURE, so a lock resolved for anything else could pin a dependency set (markers)
    # that differs from what pip installs there.
    assert LOCK == LAYER_LOCK
    python_version = RUNTIME.name.removeprefix("python")
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[ARCHITECTURE.name]
    command = LAYER_LOCK.read_text().splitlines()[1]
    assert f"--python-version {python_version} " in command
    assert f"--python-platform {machine}-manylinux2014 " in command
    assert "-c requirements-dev.lock " in command
