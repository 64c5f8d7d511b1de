"""Where a local function's output goes, filtered by its log level as Lambda filters it.

On Lambda, a function with JSON logs and an ``ApplicationLogLevel`` keeps only the lines whose
``level`` is at or above it, whatever the code printed. Locally, every function prints into
one process: its standard output is this router while it runs, which sends each line to the
running function's log, kept or dropped by the same rule.

Why a router and not ``redirect_stdout`` to the log itself: a handler bound to a stream when
its module is first imported (Powertools' default handler is) would send every later
function's lines to the first one's log. The payment logger writes to standard output as it
is at each line (``StandardOutput``), and the router is that output while any function
runs; which log a line reaches, and whether it is kept, is decided per invocation.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

# Lambda's application log levels, lowest first (AWS::Lambda::Function LoggingConfig).
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# Python's names for two of them, as Powertools writes them in the ``level`` field.
ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def level_rank(level: str) -> int:
    """The rank of ``level`` (Lambda's or Python's name); ValueError for an unknown one."""
    name = ALIASES.get(level.upper(), level.upper())
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; known: {', '.join(LEVELS)}")
    return LEVELS.index(name)


def application_log_level(logging_config: Mapping[str, Any] | None) -> str:
    """The level a function's ``LoggingConfig`` keeps: Lambda filters JSON logs only (at INFO
    unless told), and keeps every line of text logs."""
    config = logging_config or {}
    if config.get("LogFormat") != "JSON":
        return LEVELS[0]
    level = config.get("ApplicationLogLevel", "INFO")
    return str(level)


def kept(line: str, minimum: int) -> bool:
    """Whether Lambda keeps ``line`` at level rank ``minimum``. A line's level is its JSON
    ``level``; a line without one, or with one Lambda does not know (plain text, an
    embedded-metric line, the runtime's error report, which says ``log_level``) is INFO, as
    Lambda's log-level filtering documents: at WARN such lines are dropped."""
    level = _level_of(line)
    try:
        rank = level_rank(level) if level is not None else LEVELS.index("INFO")
    except ValueError:
        rank = LEVELS.index("INFO")
    return rank >= minimum


def _level_of(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        level = json.loads(line).get("level")
    except (ValueError, AttributeError):
        return None
    return level if isinstance(level, str) else None


@dataclass
class _Destination:
    log: TextIO
    minimum: int
    partial: list[str] = field(default_factory=list)


_running: contextvars.ContextVar[_Destination | None] = contextvars.ContextVar(
    "running_function_output", default=None
)


class FunctionOutput(io.TextIOBase):
    """Standard output while a function runs: complete lines go to its log if kept."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        destination = _running.get()
        if destination is None:
            # A line written outside any invocation (a handler bound to this stream, logging
            # at import): where standard output would have gone.
            return sys.__stdout__.write(text) if sys.__stdout__ else len(text)
        destination.partial.append(text)
        if "\n" not in text:
            return len(text)
        *lines, rest = "".join(destination.partial).split("\n")
        destination.partial = [rest] if rest else []
        for line in lines:
            if kept(line, destination.minimum):
                destination.log.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        destination = _running.get()
        if destination is not None:
            destination.log.flush()


ROUTER = FunctionOutput()


@contextlib.contextmanager
def function_output(log: TextIO, level: str) -> Iterator[None]:
    """Standard output goes to ``log`` for the duration, keeping lines at ``level`` and above."""
    destination = _Destination(log, level_rank(level))
    token = _running.set(destination)
    try:
        with contextlib.redirect_stdout(ROUTER):
            yield
    finally:
        if destination.partial:  # a last line without its newline is still written
            line = "".join(destination.partial)
            if kept(line, destination.minimum):
                log.write(line)
        _running.reset(token)
