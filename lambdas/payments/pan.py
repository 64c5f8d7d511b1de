"""Recognising a clear PAN, so that one can be refused and never repeated.

A card number has 12 to 19 digits and passes the Luhn check. Tokens from a vault are often
format-preserving (all digits) but deliberately fail Luhn, so the check does not reject them.
"""

from __future__ import annotations

import re

_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){11,18}(?!\d)")
PAN_REDACTION = "[PAN REDACTED]"


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn (mod 10) check."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def looks_like_pan(value: str) -> bool:
    """True when the value, ignoring spaces and dashes, is 12-19 digits passing Luhn."""
    digits = value.replace(" ", "").replace("-", "")
    return 12 <= len(digits) <= 19 and luhn_valid(digits)


def redact_pans(text: str) -> str:
    """Replace every PAN-like digit run in free text, for reasons and messages we emit."""
    return _DIGIT_RUN.sub(
        lambda match: PAN_REDACTION if looks_like_pan(match.group()) else match.group(), text
    )
