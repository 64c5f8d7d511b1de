"""The one pydantic configuration of the domain's records and events.

camelCase on the wire, immutable, no unknown fields, and errors that never echo input:
records carry card tokens, account ids, IBANs and amounts.
"""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

RECORD_CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    frozen=True,
    extra="forbid",
    hide_input_in_errors=True,
    # Each model's validator is built when it first validates, not at import: a function
    # imports every event model and uses a few (docs/adr/0024-lazy-imports-on-the-payment-path.md).
    defer_build=True,
)
