"""``payments-local``: the command line for trying the pipeline on a laptop."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

import click

from payments.generator import Knobs, TransactionGenerator


def _json_default(value: Any) -> Any:
    # Amounts a malformed record carries as fractions must stay exact, never become floats.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


@click.group()
def main() -> None:
    """Try the event-driven payment-posting pipeline locally, without an AWS account."""


@main.command()
@click.option(
    "--count",
    "-n",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="How many records to generate.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed for a reproducible set (give --start too for identical times).",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Transmission time of the first record, UTC if no zone (default: now).",
)
@click.option(
    "--duplicate-rate",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Fraction of records that retransmit an earlier authorization.",
)
@click.option(
    "--foreign-rate",
    type=click.FloatRange(0, 1),
    default=0.15,
    show_default=True,
    help="Fraction paid in a currency other than the billing currency.",
)
@click.option(
    "--high-value-rate",
    type=click.FloatRange(0, 1),
    default=0.03,
    show_default=True,
    help="Fraction above the high-value threshold (10,000.00 EUR).",
)
@click.option(
    "--unknown-account-rate",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Fraction for accounts the bank does not hold.",
)
@click.option(
    "--malformed-rate",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Fraction with a planted defect, to be quarantined.",
)
@click.option(
    "--output",
    "-o",
    type=click.File("w"),
    default="-",
    help="Where to write JSON lines (default: standard output).",
)
@click.option(
    "--with-kind",
    is_flag=True,
    help="Wrap each record as {kind, duplicateOf, defect, item}, to check a run.",
)
def generate(
    count: int,
    seed: int | None,
    start: datetime | None,
    duplicate_rate: float,
    foreign_rate: float,
    high_value_rate: float,
    unknown_account_rate: float,
    malformed_rate: float,
    output: TextIO,
    with_kind: bool,
) -> None:
    """Generate sample authorized transactions as JSON lines (the guidance's visa-mock).

    Each line is a transactions-table item; amounts are integer minor units.
    """  # fmt: skip
    try:
        knobs = Knobs(
            duplicate_rate=duplicate_rate,
            foreign_rate=foreign_rate,
            high_value_rate=high_value_rate,
            unknown_account_rate=unknown_account_rate,
            malformed_rate=malformed_rate,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    first = datetime.now(UTC) if start is None else start
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    for record in TransactionGenerator(knobs=knobs, seed=seed, start=first).generate(count):
        line: dict[str, Any] = record.item
        if with_kind:
            line = {
                "kind": record.kind.value,
                "duplicateOf": record.duplicate_of,
                "defect": record.defect.value if record.defect else None,
                "item": record.item,
            }
        output.write(json.dumps(line, default=_json_default) + "\n")


if __name__ == "__main__":
    main()
