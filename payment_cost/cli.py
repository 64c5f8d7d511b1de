"""``python -m payment_cost``: what a month at a volume costs, from cdk.out and a local run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from payment_cost.activity import DEFAULT_REPORT, DEFAULT_STATE, load_activity
from payment_cost.errors import CostInputError
from payment_cost.guidance import guidance_activity, guidance_inventory
from payment_cost.leaner import leaner_activity, leaner_inventory
from payment_cost.model import cost
from payment_cost.prices import load_prices
from payment_cost.report import comparison, comparison_text, summary, text
from payment_cost.template import inventory_from_template, load_template

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CostInputError(message)


def _volume(value: str) -> int:
    try:
        volume = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"volume must be a whole number, got {value!r}") from None
    if volume <= 0:
        raise argparse.ArgumentTypeError(f"volume must be positive, got {value!r}")
    return volume


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="make cost", description=__doc__)
    p.add_argument(
        "--cdk-out", type=Path, default=Path("cdk.out"), help="the cloud assembly to price"
    )
    p.add_argument("--volume", type=_volume, default=20_000_000, help="records written a month")
    p.add_argument("--region", default="us-east-1", help="the price table's Region")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="the local run's state folder")
    p.add_argument(
        "--report", type=Path, default=DEFAULT_REPORT, help="the local run's JSON report"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        prices = load_prices(args.region)
        name, template = load_template(args.cdk_out)
        activity = load_activity(args.state, args.report)
        deployed = inventory_from_template(name, template)
        costing = cost(deployed, activity, prices, args.volume)
        guidance = cost(guidance_inventory(), guidance_activity(activity), prices, args.volume)
        leaner = cost(
            leaner_inventory(deployed, activity), leaner_activity(activity), prices, args.volume
        )
    except CostInputError as error:
        print(f"make cost: {error}", file=sys.stderr)
        return USAGE_ERROR
    print("\n".join(text(costing) + comparison_text(costing, guidance, leaner)))
    print(f"\nActivity from {activity.origin} ({activity.records} records); prices: {args.region}")
    if args.json is not None:
        data = (
            summary(costing)
            | comparison(costing, guidance, leaner)
            | {"region": args.region, "activity": activity.origin}
        )
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(data, indent=2) + "\n")
        except OSError as error:
            print(f"make cost: cannot write {args.json}: {error}", file=sys.stderr)
            return USAGE_ERROR
        print(f"JSON report: {args.json}")
    return 0
