"""What "looks like a card number" means, defined once for validation, redaction and detection.

A value *contains a card number* when it holds a run of 13 to 19 digits that

- passes the Luhn check,
- starts with the leading digits (IIN range) of a card scheme, and
- has a length that scheme issues for those leading digits.

A run is bounded by anything that is not a digit, so ``tok_4111111111111111``,
``M4111111111111111`` and ``4111111111111111x`` all contain one. Digits printed the way card
numbers are printed (``4111 1111 1111 1111``, ``3782-822463-10005``: groups in a card layout,
one separator throughout; dashed groups not glued to letters, as UUIDs are) count too.

A run longer than 19 digits is not a card number (no scheme issues one), which keeps stream
sequence numbers and IBAN digit runs quiet; nor is a run that fails Luhn or starts where no
scheme issues cards, which keeps vault tokens (deliberately not Luhn-valid), epoch timestamps
(``17...``) and most generated ids quiet.

Fixed-format numeric fields (STAN: 6 digits, RRN: 12, terminal id: up to 8) are too short to
hold a card number and are checked by their own formats instead.

The scheme table follows the issuer identification number (IIN) ranges and lengths the schemes
publish, as summarised in Wikipedia's "Payment card number" article; it is written from that
summary and has not been checked against each scheme's own rules. It lists the schemes a
European or US issuer meets. UATP (airline, leading 1) is left out on purpose: 15-digit numbers
starting with 1 are common and are not payment card numbers in this pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

REDACTION = "[card number]"
MIN_LENGTH = 13
MAX_LENGTH = 19
# Anything with 13 digits close together; most text has none and is passed over at C speed.
_MAYBE = re.compile(r"\d(?:[ -]?\d){12}")
_DIGIT_RUN = re.compile(r"\d+")
# Digit groups joined by single spaces, or by single dashes. Dashed groups glued to letters are
# left alone: "ab123456-1234-5678-9012" is the start of a UUID, not a card number.
_GROUPED = (
    re.compile(r"(?<!\d)\d+(?: \d+)+(?!\d)"),
    re.compile(r"(?<![A-Za-z0-9])\d+(?:-\d+)+(?![A-Za-z0-9])"),
)
# How card numbers are printed in groups: 4-4-4-4 (with a short fifth group for 17-19 digits,
# or a short fourth for 13-15), and American Express / Diners 4-6-5 and 4-6-4.
_LAYOUTS = frozenset(
    {(4, 4, 4, n) for n in (1, 2, 3, 4)}
    | {(4, 4, 4, 4, n) for n in (1, 2, 3)}
    | {(4, 6, 5), (4, 6, 4)}
)
_LONGEST_LAYOUT = max(len(layout) for layout in _LAYOUTS)


@dataclass(frozen=True)
class _Scheme:
    name: str
    # (low, high) prefixes of equal width, inclusive.
    ranges: tuple[tuple[str, str], ...]
    lengths: frozenset[int]

    def issues(self, digits: str) -> bool:
        if len(digits) not in self.lengths:
            return False
        return any(low <= digits[: len(low)] <= high for low, high in self.ranges)


def _span(*lengths: int) -> frozenset[int]:
    return frozenset(lengths)


_ALL = _span(*range(MIN_LENGTH, MAX_LENGTH + 1))
_SCHEMES: tuple[_Scheme, ...] = (
    _Scheme("Visa", (("4", "4"),), _span(13, 16, 19)),
    _Scheme("Mastercard", (("51", "55"), ("2221", "2720")), _span(16)),
    _Scheme("American Express", (("34", "34"), ("37", "37")), _span(15)),
    _Scheme(
        "Discover",
        (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")),
        _span(16, 17, 18, 19),
    ),
    _Scheme("JCB", (("3528", "3589"),), _span(16, 17, 18, 19)),
    _Scheme(
        "Diners Club",
        (("36", "36"), ("300", "305"), ("3095", "3095"), ("38", "39")),
        _span(14, 15, 16, 17, 18, 19),
    ),
    _Scheme("UnionPay", (("62", "62"), ("81", "81")), _span(16, 17, 18, 19)),
    _Scheme(
        "Maestro",
        tuple(
            (prefix, prefix)
            for prefix in ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")
        ),
        _ALL,
    ),
    _Scheme("Dankort", (("5019", "5019"),), _span(16)),
    _Scheme("Mir", (("2200", "2204"),), _span(16, 17, 18, 19)),
    _Scheme("RuPay", (("60", "60"), ("65", "65"), ("81", "82"), ("508", "508")), _span(16)),
    _Scheme(
        "Verve",
        (("506099", "506198"), ("650002", "650027"), ("507865", "507964")),
        _span(16, 18, 19),
    ),
    _Scheme("Troy", (("9792", "9792"),), _span(16)),
)


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


def is_card_number(digits: str) -> bool:
    """True when ``digits`` (digits only) is a number a card scheme could have issued."""
    return (
        MIN_LENGTH <= len(digits) <= MAX_LENGTH
        and luhn_valid(digits)
        and any(scheme.issues(digits) for scheme in _SCHEMES)
    )


def _grouped_readings(match: re.Match[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of consecutive groups whose lengths are a card layout."""
    groups = [(m.start(), m.end()) for m in _DIGIT_RUN.finditer(match.group())]
    for first in range(len(groups)):
        for last in range(first + 1, min(first + _LONGEST_LAYOUT, len(groups))):
            layout = tuple(end - start for start, end in groups[first : last + 1])
            if layout in _LAYOUTS:
                yield match.start() + groups[first][0], match.start() + groups[last][1]


def _readings(text: str) -> Iterator[tuple[int, int]]:
    for match in _DIGIT_RUN.finditer(text):
        yield match.span()
    for grouped in _GROUPED:
        for match in grouped.finditer(text):
            yield from _grouped_readings(match)


def card_number_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every card number in ``text``, by the definition above, in order."""
    if not _MAYBE.search(text):
        return []
    found = {
        (start, end)
        for start, end in _readings(text)
        if is_card_number(re.sub(r"\D", "", text[start:end]))
    }
    return sorted(found)


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds anything that looks like a card number, anywhere in it."""
    return bool(card_number_spans(text))


def redact_card_numbers(text: str) -> str:
    """``text`` with every card number in it replaced by ``REDACTION``."""
    spans = card_number_spans(text)
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in spans:  # readings of grouped digits may overlap: redact their union
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[str] = []
    position = 0
    for start, end in merged:
        parts.append(text[position:start])
        parts.append(REDACTION)
        position = end
    parts.append(text[position:])
    return "".join(parts)
