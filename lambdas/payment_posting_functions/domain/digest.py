"""How a digest is written down wherever it is stored or logged.

Hex digests hold long digit runs often enough to look like card numbers to ``domain.pan``
(and to any scanner a bank runs over its tables and logs): about one SHA-256 in 2,500 and one
MD5 in 6,000 carries a Luhn-valid run a scheme issues, so a few hundred stored digests trip a
scan in about one run in ten. Lowercase base32 has only 2-7 for digits, so no run of 13
digits can occur in it.
"""

from __future__ import annotations

import base64


def digest_text(digest: bytes) -> str:
    """``digest`` in lowercase base32, unpadded."""
    return base64.b32encode(digest).decode().rstrip("=").lower()


def hex_digest_text(hex_digest: str) -> str:
    """A hex digest (as a library hands it over) written as ``digest_text`` writes digests."""
    return digest_text(bytes.fromhex(hex_digest))
