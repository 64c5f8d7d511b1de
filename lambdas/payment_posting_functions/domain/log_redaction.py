"""A Powertools log formatter that never writes a card number, whatever field it hides in.

Handlers log ids and counts only, and validation refuses card numbers in every id; this is the
guard behind both, on the last step before a line leaves the function: the serialized JSON.
Redaction touches digit runs only, so the line stays valid JSON.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import IO, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

from payment_posting_functions.domain.pan import redact_card_numbers


class CardNumberRedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        return redact_card_numbers(super().serialize(log))


class StandardOutput(io.TextIOBase):
    """Standard output as it is when a line is written, not as it was when the logger was
    made (the standard library's last-resort handler reads ``sys.stderr`` the same way).

    On Lambda the two are one stream. Where several functions share a process (the local
    runtime, tests) a handler module is imported once, by whoever comes first, and standard
    output changes per invocation: bound at import, every later function's lines would go to
    the first one's stream.
    """

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def payment_logger(handler: logging.Handler | None = None, service: str | None = None) -> Logger:
    """The logger every handler uses: Powertools JSON with card numbers redacted.

    ``handler`` is where lines go (standard output, as Lambda wants, unless a test says).
    Powertools sets a service's logger up once per process, so a test that brings its own
    handler names its own ``service`` too.
    """
    return Logger(
        service=service,
        logger_formatter=CardNumberRedactingFormatter(),
        logger_handler=handler,
        # Powertools types ``stream`` as IO[str]; a handler only writes and flushes it.
        stream=cast(IO[str], StandardOutput()),
    )
