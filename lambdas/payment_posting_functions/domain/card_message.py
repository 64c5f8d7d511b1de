"""What a card or ATM message is, following ISO 8583: its class, its type, and its link.

The message type indicator (MTI) says the class: authorization (0100), financial (0200: ATM,
debit PIN), their advices (0120, 0220: the forced form, already decided by a stand-in or the
scheme), reversal (0400, 0420), and the clearing (presentment) record of a dual-message
transaction (1240, the ISO 8583:1993 first presentment schemes clear with). The first two
digits of the processing code (DE 3) say the type: purchase, cash withdrawal, refund, or an
inquiry that moves no money.

Messages of one card transaction are tied together by its **link**: the card token, the
retrieval reference number (DE 37) and the authorization code (DE 38) of the message that
started it. A clearing carries the RRN and auth code of the authorization it settles; a
reversal carries the original's (in its original data elements, DE 90 style). The ledger
keeps the original's transfer under the link id, so finding it is one keyed read, not a scan.
"""

from __future__ import annotations

import base64
import hashlib
from enum import StrEnum


class MessageClass(StrEnum):
    AUTHORIZATION = "AUTHORIZATION"  # dual message: a hold now, the clearing posts it
    FINANCIAL = "FINANCIAL"  # single message: posted at once (ATM, debit PIN)
    REVERSAL = "REVERSAL"  # undoes (part of) an authorization or a financial message
    CLEARING = "CLEARING"  # the scheme's presentment: settles an authorization


# The MTIs this pipeline posts, and what each is. A response (0110, 0210) or a network
# management message (0800) is not a transaction to post: validation refuses it.
MESSAGE_TYPES: dict[str, tuple[MessageClass, bool]] = {
    "0100": (MessageClass.AUTHORIZATION, False),
    "0120": (MessageClass.AUTHORIZATION, True),
    "0200": (MessageClass.FINANCIAL, False),
    "0220": (MessageClass.FINANCIAL, True),
    "0400": (MessageClass.REVERSAL, False),
    "0420": (MessageClass.REVERSAL, True),
    "1240": (MessageClass.CLEARING, False),
}
MTI_PATTERN = "^(" + "|".join(MESSAGE_TYPES) + ")$"


class TransactionType(StrEnum):
    PURCHASE = "PURCHASE"
    CASH_WITHDRAWAL = "CASH_WITHDRAWAL"
    REFUND = "REFUND"
    INQUIRY = "INQUIRY"  # balance or available-funds inquiry: no money moves


# DE 3 positions 1-2 (ISO 8583:1987): 00 goods and services, 01 cash, 20 returns,
# 30 available funds inquiry, 31 balance inquiry.
TRANSACTION_TYPES: dict[str, TransactionType] = {
    "00": TransactionType.PURCHASE,
    "01": TransactionType.CASH_WITHDRAWAL,
    "20": TransactionType.REFUND,
    "30": TransactionType.INQUIRY,
    "31": TransactionType.INQUIRY,
}
PROCESSING_CODE_PATTERN = r"^(" + "|".join(TRANSACTION_TYPES) + r")\d{4}$"


def message_class(mti: str) -> MessageClass:
    return MESSAGE_TYPES[mti][0]


def is_advice(mti: str) -> bool:
    """An advice tells of a decision already made elsewhere: it is posted even where a
    check would have refused it (forced), with the reason kept."""
    return MESSAGE_TYPES[mti][1]


def transaction_type(processing_code: str) -> TransactionType:
    return TRANSACTION_TYPES[processing_code[:2]]


# v1: the first 130 bits of SHA-256 in lowercase base32. Base32 has only 2-7 as digits, so a
# link id never looks like a card number to the detector (see ``domain.fingerprint``).
LINK_VERSION = "l1"


def link_id(pan_token: str, rrn: str, auth_code: str) -> str:
    """The id the ledger keeps a card transaction's first transfer under (a hold, or a
    single-message posting), derived from the data elements every later message carries."""
    raw = hashlib.sha256("\x1f".join((pan_token, rrn, auth_code)).encode()).digest()
    return f"{LINK_VERSION}.{base64.b32encode(raw).decode().rstrip('=').lower()[:26]}"


# How long an authorization hold waits for its clearing before it expires and is released,
# by merchant category. Most clear within days; hotels, car rental and cruise lines
# authorize an estimate at check-in and clear at check-out, weeks later (the schemes allow
# them a longer validity). Seconds.
DEFAULT_HOLD_SECONDS = 7 * 24 * 3600
LONG_HOLD_SECONDS = 31 * 24 * 3600


def _long_hold(mcc: str) -> bool:
    code = int(mcc)
    # 3351-3441 car rental, 3501-3999 hotels (by chain), 4411 cruise lines, 7011 lodging,
    # 7512 car rental agencies, 7513 truck rental.
    return 3351 <= code <= 3999 or code in (4411, 7011, 7512, 7513)


def hold_seconds(mcc: str, *, default: int = DEFAULT_HOLD_SECONDS,
                 long: int = LONG_HOLD_SECONDS) -> int:  # fmt: skip
    """How long an authorization of this merchant category holds the money."""
    return long if _long_hold(mcc) else default
