"""A named local state folder: what a local run leaves behind for the next command.

moto keeps everything in this process's memory, so without this a dead-letter queue could
not be looked at, redriven or replayed after the command that filled it. After each command
that changes anything, the runtime's data is written to ``.payments-local/<name>/``:

- every table's items (as DynamoDB's JSON), every queue's messages (body, attributes, group,
  receive count, sent time), the event archive's events, the runtime's clock offset;
- the event log (``events.jsonl``), the ledger's balances and entries (``ledger.json``), the
  functions' log, the transactions each run wrote, and the audit records of redrives and
  replays (``audit.jsonl``, append-only).

The next command provisions the same template on a fresh moto and puts the data back
(``restore``) before anything runs. Tables are restored without stream records, so the pipe
does not read old writes again: as on AWS after the stream's 24 hours, what the pipe missed
must be re-read from the table (``redrive ingest``). A state is saved whole or not at all (a
new folder renamed over the old), and one command at a time holds it (a lock file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payment_local.event_log import LoggedEvent, load_events
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.digest import digest_text

ROOT = Path(".payments-local")
DEFAULT_NAME = "default"
STATE_ENV = "PAYMENTS_LOCAL_STATE"
FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StateError(Exception):
    """A state folder that cannot be used as asked; the message says what to do."""


def template_digest(runtime_or_template: Any) -> str:
    template = getattr(getattr(runtime_or_template, "assembly", None), "template", None)
    document = template if template is not None else runtime_or_template
    # Base32 (domain.digest): a hex prefix can hold a digit run that looks like a card number.
    return digest_text(hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest())[:16]


@dataclass
class LocalState:
    """One named state folder under ``root``."""

    name: str = DEFAULT_NAME
    root: Path = ROOT
    meta: dict[str, Any] = field(default_factory=dict)
    # Set by ``start_fresh``: the next save keeps nothing of the folder it replaces.
    fresh: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise StateError(
                f"state name {self.name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
            )

    @property
    def path(self) -> Path:
        return self.root / self.name

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.json"

    @property
    def function_log_path(self) -> Path:
        return self.path / "functions.log"

    @property
    def audit_path(self) -> Path:
        return self.path / "audit.jsonl"

    @property
    def exists(self) -> bool:
        return (self.path / "meta.json").is_file()

    def load_meta(self) -> dict[str, Any]:
        if not self.exists:
            return {}
        try:
            meta: dict[str, Any] = json.loads((self.path / "meta.json").read_text())
        except (OSError, ValueError) as error:
            raise StateError(
                f"state {self.name!r} at {self.path} is unreadable ({error}); "
                "start clean with `--fresh`"
            ) from None
        if meta.get("format") != FORMAT:
            raise StateError(
                f"state {self.name!r} was written by another version of payments-local; "
                "start clean with `--fresh`"
            )
        self.meta = meta
        return meta

    def require(self) -> dict[str, Any]:
        """The meta of a state that must exist (commands that only read or operate on it)."""
        if not self.exists:
            raise StateError(
                f"no local state {self.name!r} at {self.path}: run `payments-local run"
                f"{'' if self.name == DEFAULT_NAME else f' --state {self.name}'}` (or `send`) "
                "first"
            )
        return self.load_meta()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One command at a time on a state: a second waits for none, it is refused."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / f".{self.name}.lock"
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateError(
                    f"another payments-local command is using state {self.name!r}"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- what the next command gets back ---------------------------------------------------

    def restore(self, runtime: LocalRuntime) -> None:
        """Put the saved data into a runtime just provisioned from the same template."""
        meta = self.require()
        if meta.get("template") != template_digest(runtime):
            runtime_note = (
                f"state {self.name!r} was saved from another template "
                f"(cdk.out has changed since); data is restored by logical id"
            )
            self.meta.setdefault("notes", []).append(runtime_note)
        runtime.time_offset = float(meta.get("timeOffset", 0.0))
        from payment_local import state_data  # the moto side, kept apart

        state_data.restore_tables(runtime, _read_lines(self.path / "tables.jsonl"))
        state_data.restore_queues(runtime, _read_lines(self.path / "queues.jsonl"))
        state_data.restore_archives(runtime, _read_lines(self.path / "archives.jsonl"))
        if self.events_path.is_file():
            for event in load_events(self.events_path):
                runtime.event_log.restore(event)

    def written(self) -> list[dict[str, Any]]:
        """The transactions every run and send wrote: id and time written, in order."""
        return _read_lines(self.path / "written.jsonl")

    def audit_records(self) -> list[dict[str, Any]]:
        return _read_lines(self.audit_path)

    # -- saving --------------------------------------------------------------------------

    def save(
        self,
        runtime: LocalRuntime,
        *,
        ledger: dict[str, Any] | None,
        written: list[dict[str, Any]] | None = None,
        command: dict[str, Any] | None = None,
        audit: dict[str, Any] | None = None,
        function_log: Path | None = None,
    ) -> None:
        """Write the whole state to a new folder, then put it in place of the old one.

        ``written`` adds to the transactions earlier runs wrote; ``audit`` appends one audit
        record; ``function_log`` is this command's log, appended to the earlier ones.
        """
        from payment_local import state_data

        staging = self.root / f".{self.name}.new"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _write_lines(staging / "tables.jsonl", state_data.dump_tables(runtime))
        _write_lines(staging / "queues.jsonl", state_data.dump_queues(runtime))
        _write_lines(staging / "archives.jsonl", state_data.dump_archives(runtime))
        _write_lines(staging / "events.jsonl", (e.to_json() for e in runtime.event_log.events))
        if ledger is not None:
            (staging / "ledger.json").write_text(json.dumps(ledger, indent=1))
        kept = None if self.fresh else self.path
        _append_copy(kept and kept / "written.jsonl", staging / "written.jsonl", written or [])
        audits = [audit] if audit else []
        _append_copy(kept and kept / "audit.jsonl", staging / "audit.jsonl", audits)
        previous_log = kept and kept / "functions.log"
        with (staging / "functions.log").open("w") as out:
            for source in (previous_log, function_log):  # earlier commands' first
                if source is not None and source.is_file():
                    out.write(source.read_text())
        commands = list(self.meta.get("commands", []))
        if command is not None:
            commands.append({"at": time.time(), **command})
        meta = {
            "format": FORMAT,
            "name": self.name,
            "stack": runtime.assembly.stack_name,
            "template": template_digest(runtime),
            "created": self.meta.get("created", time.time()),
            "updated": time.time(),
            "timeOffset": runtime.time_offset,
            "commands": commands[-200:],
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        retired = self.root / f".{self.name}.old"
        shutil.rmtree(retired, ignore_errors=True)
        if self.path.exists():
            os.replace(self.path, retired)
        os.replace(staging, self.path)
        shutil.rmtree(retired, ignore_errors=True)
        self.meta = meta
        self.fresh = False

    def start_fresh(self) -> None:
        """Start clean (``--fresh``): the old folder is replaced only when the new one is
        saved, so a command that fails before that leaves it as it was."""
        self.meta = {}
        self.fresh = True


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _write_lines(path: Path, rows: Any) -> None:
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")


def _append_copy(old: Path | None, new: Path, rows: list[dict[str, Any]]) -> None:
    with new.open("w") as out:
        if old is not None and old.is_file():
            out.write(old.read_text())
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")


def logged_events(state: LocalState) -> list[LoggedEvent]:
    return load_events(state.events_path) if state.events_path.is_file() else []
