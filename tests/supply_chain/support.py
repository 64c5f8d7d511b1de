"""Reading the hashed lock files, and wheels made on the spot so pip can be tried offline."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_LOCK = ROOT / "requirements-bootstrap.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
LAYER_LOCK = ROOT / "lambdas" / "requirements.lock"
LOCKS = (BOOTSTRAP_LOCK, DEV_LOCK, LAYER_LOCK)

# name[extras]==version, then whitespace, an environment marker or the end.
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;]+)(?=\s|;|$)"
)
_HASH = re.compile(r"--hash=(?P<algorithm>\w+):(?P<digest>\S+)")


def normalize(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockedRequirement:
    line: str
    name: str
    version: str
    hashes: tuple[str, ...]  # "sha256:<hex>"


def logical_lines(path: Path) -> list[str]:
    """The lines pip reads: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line]


def locked_requirements(path: Path) -> list[LockedRequirement]:
    """Every requirement of a lock; raises on a line that is not ``name==version ...``."""
    requirements = []
    for line in logical_lines(path):
        pin = _PIN.match(line)
        if pin is None:
            raise ValueError(f"{path.name}: not an exact pin: {line[:80]}")
        hashes = tuple(f"{m['algorithm']}:{m['digest']}" for m in _HASH.finditer(line))
        requirements.append(LockedRequirement(line, normalize(pin["name"]), pin["version"], hashes))
    return requirements


def locked_versions(path: Path) -> dict[str, str]:
    return {r.name: r.version for r in locked_requirements(path)}


def input_pins(path: Path) -> dict[str, str]:
    """The exact pins of a hand-edited requirements file, following its ``-r`` includes."""
    pins: dict[str, str] = {}
    for line in logical_lines(path):
        if line.startswith("-r "):
            pins |= input_pins(path.parent / line.removeprefix("-r ").strip())
            continue
        pin = _PIN.match(line)
        if pin is None:
            raise ValueError(f"{path.name}: not an exact pin: {line}")
        pins[normalize(pin["name"])] = pin["version"]
    return pins


@dataclass(frozen=True)
class Wheel:
    path: Path
    requirement: str  # name==version
    sha256: str


def build_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Wheel:
    """A minimal pure-Python wheel, so pip's hash checking can be tried without an index."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {requirement}\n" for requirement in requires
    )
    files = {
        f"{module}/__init__.py": b"",
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(
        f"{path},sha256={_urlsafe_digest(content)},{len(content)}\n"
        for path, content in files.items()
    )
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in files.items():
            archive.writestr(zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0)), content)
    return Wheel(path, f"{name}=={version}", hashlib.sha256(path.read_bytes()).hexdigest())


def _urlsafe_digest(content: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


def offline_lock(path: Path, wheels: Path, *lines: str) -> Path:
    """A lock that makes pip look only in ``wheels``: no index is reached."""
    path.write_text("\n".join(["--no-index", f"--find-links {wheels}", *lines]) + "\n")
    return path
