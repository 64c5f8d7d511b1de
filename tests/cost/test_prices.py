"""Every price names the AWS page it was read from and the date; a Region without a table is
refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payment_cost import model
from payment_cost.errors import CostInputError
from payment_cost.prices import PRICES_DIR, available_regions, load_prices, parse_prices


@pytest.mark.parametrize("region", available_regions())
def test_every_price_names_its_source_page_and_date(region: str) -> None:
    raw = json.loads((PRICES_DIR / f"{region}.json").read_text())
    assert raw["prices"]
    for key, entry in raw["prices"].items():
        assert entry["source"].startswith("https://aws.amazon.com/"), key
        assert entry["source"].rstrip("/").endswith("pricing") or "pricing/" in entry["source"], key
        assert len(entry["date"]) == 10, key
        assert entry["value"] > 0, key


def test_every_price_the_model_uses_is_in_the_table() -> None:
    used = set()
    source = Path(model.__file__).read_text()
    for key in load_prices("us-east-1").prices:
        if f'"{key}"' in source:
            used.add(key)
    for fragment in ('"lambda.gb_second.', '"dynamodb.', '"eventbridge.', '"kms.', '"xray.'):
        assert fragment in source
    assert used, "the model names no price"


def test_a_price_without_a_source_is_refused() -> None:
    with pytest.raises(CostInputError, match="price x has no source"):
        parse_prices({"prices": {"x": {"value": 1, "unit": "u", "date": "2026-12-02"}}}, "t")
    with pytest.raises(CostInputError, match="not an AWS pricing page"):
        parse_prices(
            {
                "prices": {
                    "x": {"value": 1, "unit": "u", "date": "d", "source": "https://x.example"}
                }
            },
            "t",
        )


def test_an_unknown_region_names_the_known_ones() -> None:
    with pytest.raises(
        CostInputError, match=r"no price table for region 'mars-1' \(there are: .*us-east-1"
    ):
        load_prices("mars-1")
