"""The model on the stack as the project synthesizes it, prod and dev: every priced path of the
pipeline is found, and the stage settings move the bill the way the stages mean them to."""

from __future__ import annotations

from typing import Any

import pytest

from payment_cost.inventory import Inventory
from payment_cost.model import Costing, cost
from payment_cost.prices import load_prices
from payment_cost.template import inventory_from_template
from tests.cost.small_stack import lifecycle
from tests.infra.support import synth_payment_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inventories() -> dict[str, Inventory]:
    found = {}
    for stage in ("dev", "prod"):
        _, template = synth_payment_stack(stage)
        body: dict[str, Any] = dict(template.to_json())
        found[stage] = inventory_from_template(f"PaymentPosting-{stage}", body)
    return found


def costed(inventory: Inventory) -> Costing:
    return cost(inventory, lifecycle(), load_prices("us-east-1"), 20_000_000)


def test_every_rule_target_and_function_trigger_is_understood(
    inventories: dict[str, Inventory],
) -> None:
    for inventory in inventories.values():
        assert all(t.kind != "other" for r in inventory.rules for t in r.targets)
        assert inventory.pipes
        assert inventory.pipes[0].enrichment in inventory.functions
        assert inventory.sqs_sources
        assert inventory.state_machines
        assert inventory.keys
        assert inventory.archives


def test_each_function_of_the_path_is_invoked(inventories: dict[str, Inventory]) -> None:
    costing = costed(inventories["prod"])
    for service in ("ingest-dedup", "enrichment", "posting"):
        requests = [i for i in costing.items if i.item == f"{service} requests"]
        assert requests, service
        assert requests[0].per_record > 0, service
    assert any(i.item == "workflow executions (Express)" for i in costing.items)


def test_the_ledger_is_its_own_block(inventories: dict[str, Inventory]) -> None:
    prod = inventories["prod"]
    ledger_tables = {
        t for f in prod.functions.values() for v, t in f.tables.items() if v.startswith("LEDGER_")
    }
    assert ledger_tables
    assert ledger_tables <= prod.ledger_ids
    costing = costed(prod)
    assert costing.total("ledger") > 0
    assert any(i.block == "ledger" and "Ledger" in i.item for i in costing.items)


def test_prod_keeps_the_archive_longer_batches_postings_and_traces_less(
    inventories: dict[str, Inventory],
) -> None:
    dev, prod = costed(inventories["dev"]), costed(inventories["prod"])

    def value(costing: Costing, name: str) -> float:
        return sum(i.per_million(costing.volume) for i in costing.items if i.item == name)

    assert value(prod, "archive: storage") > value(dev, "archive: storage")
    # prod's 1 s posting window: fewer receive and delete calls a record
    assert value(prod, "PostingQueue requests") < value(dev, "PostingQueue requests")
    assert value(prod, "workflow traces") < value(dev, "workflow traces")
