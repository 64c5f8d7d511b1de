"""Stored digests never look like card numbers, where hex digests sometimes do."""

from __future__ import annotations

import hashlib

from payment_posting_functions.domain.digest import digest_text, hex_digest_text
from payment_posting_functions.domain.idempotency_store import IdempotencyStore
from payment_posting_functions.domain.ledger_v2.dynamodb import content_hash
from payment_posting_functions.domain.pan import contains_card_number

# Enough inputs that hex would trip the detector several times (about 1 in 2,500 SHA-256s).
SAMPLES = 20_000


def _inputs() -> list[bytes]:
    return [f"record-{n}".encode() for n in range(SAMPLES)]


def test_hex_digests_do_look_like_card_numbers_now_and_then() -> None:
    # Why the encoding matters: the same inputs, in hex, trip the detector.
    tripped = [d for d in _inputs() if contains_card_number(hashlib.sha256(d).hexdigest())]
    assert len(tripped) >= 2


def test_base32_digests_never_do() -> None:
    for data in _inputs():
        assert not contains_card_number(digest_text(hashlib.sha256(data).digest()))
        assert not contains_card_number(content_hash(data.decode()))


def test_a_hex_digest_is_rewritten_without_losing_bits() -> None:
    raw = hashlib.md5(b"tx-1").digest()  # noqa: S324 (what Powertools uses for its key)
    assert hex_digest_text(raw.hex()) == digest_text(raw)
    assert len(digest_text(raw)) == 26  # 128 bits, 5 per character


def test_the_idempotency_store_writes_its_digests_in_base32() -> None:
    store = IdempotencyStore(table_name="unused")
    written = store._generate_hash("tx-1")
    assert written == hex_digest_text(hashlib.md5(b'"tx-1"').hexdigest())  # noqa: S324
    assert set(written) <= set("abcdefghijklmnopqrstuvwxyz234567")
