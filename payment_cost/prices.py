"""The price table of a Region: every price with the page it was read from and the date."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payment_cost.errors import CostInputError

PRICES_DIR = Path(__file__).resolve().parent / "prices"


@dataclass(frozen=True)
class Price:
    key: str
    value: float
    unit: str
    source: str
    date: str


@dataclass(frozen=True)
class PriceTable:
    region: str
    prices: dict[str, Price]

    def __getitem__(self, key: str) -> float:
        return self.prices[key].value

    def source(self, key: str) -> str:
        return self.prices[key].source


def available_regions() -> list[str]:
    return sorted(path.stem for path in PRICES_DIR.glob("*.json"))


def load_prices(region: str, directory: Path = PRICES_DIR) -> PriceTable:
    """The table for ``region``; a Region without one is an error that lists those there are."""
    path = directory / f"{region}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.json"))) or "none"
        raise CostInputError(f"no price table for region {region!r} (there are: {known})")
    return parse_prices(json.loads(path.read_text()), str(path))


def parse_prices(data: dict[str, Any], origin: str) -> PriceTable:
    prices: dict[str, Price] = {}
    for key, entry in data.get("prices", {}).items():
        missing = [f for f in ("value", "unit", "source", "date") if not entry.get(f)]
        if entry.get("value") == 0:
            missing = [f for f in missing if f != "value"]
        if missing:
            raise CostInputError(f"{origin}: price {key} has no {', '.join(missing)}")
        if not str(entry["source"]).startswith("https://aws.amazon.com/"):
            raise CostInputError(f"{origin}: price {key}'s source is not an AWS pricing page")
        prices[key] = Price(
            key, float(entry["value"]), entry["unit"], entry["source"], entry["date"]
        )
    return PriceTable(region=data.get("region", origin), prices=prices)
