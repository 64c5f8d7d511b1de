"""Checks of construct props that Python's types do not enforce at run time.

A number prop given as a string ("10") or a float (0.5) would otherwise surface as a
TypeError deep inside CDK or, worse, synthesize (a float threshold becomes a float in the
workflow's comparison). Unresolved tokens are skipped: their values are known only at deploy.
"""

from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import Token


def whole_number(owner: str, name: str, value: object) -> None:
    """Refuse anything but an ``int`` (``bool`` included, which Python counts as one)."""
    if Token.is_unresolved(value):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{owner}: {name} must be a whole number (int), got {type(value).__name__} {value!r}"
        )


def file_path(owner: str, name: str, value: object) -> Path:
    """A path given as ``str`` or ``os.PathLike``, as a ``Path``."""
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(
        f"{owner}: {name} must be a path (str or pathlib.Path), got {type(value).__name__}"
    )
