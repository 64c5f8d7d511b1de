"""Function logs: a card number in any field of a log line is redacted, the line stays JSON."""

from __future__ import annotations

import io
import json
import logging

from payment_posting_functions.domain.log_redaction import payment_logger
from payment_posting_functions.domain.pan import REDACTION, contains_card_number
from tests.factories import TEST_PAN


def test_a_card_number_in_the_message_or_any_extra_field_is_redacted() -> None:
    stream = io.StringIO()
    logger = payment_logger(logging.StreamHandler(stream), service="test-log-redaction")
    logger.warning(
        f"refused tok_{TEST_PAN}",
        extra={"accountId": f"ACC-{TEST_PAN}", "nested": {"merchant": "M36227206271667"}},
    )

    line = stream.getvalue().strip().splitlines()[-1]
    assert not contains_card_number(line)
    logged = json.loads(line)
    assert logged["message"] == f"refused tok_{REDACTION}"
    assert logged["accountId"] == f"ACC-{REDACTION}"
    assert logged["nested"] == {"merchant": f"M{REDACTION}"}
