"""What the sample source ("visa-mock") is asked for: how many transactions, and how made.

Its own module, not the handler's: the handler imports it on its first invocation, so pydantic
is not on the handler's import path (docs/adr/0024-lazy-imports-on-the-payment-path.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAX_COUNT = 10_000  # keeps one invocation well inside the function timeout


class SourceRequest(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )

    count: int = Field(default=100, ge=1, le=MAX_COUNT)
    seed: int | None = None
    duplicate_rate: float = Field(default=0.05, ge=0, le=1)
    foreign_rate: float = Field(default=0.15, ge=0, le=1)
    high_value_rate: float = Field(default=0.03, ge=0, le=1)
    unknown_account_rate: float = Field(default=0.02, ge=0, le=1)
    malformed_rate: float = Field(default=0.02, ge=0, le=1)
    lifecycle: bool = True
