"""The guidance's design and the leaner topology, priced by the same model."""

from __future__ import annotations

import pytest

from payment_cost.guidance import GUIDANCE_TRANSITIONS, guidance_activity, guidance_inventory
from payment_cost.leaner import DROPPED_FROM_BUS, GIVES_UP, leaner_activity, leaner_inventory
from payment_cost.model import cost
from payment_cost.prices import load_prices
from payment_cost.template import inventory_from_template
from tests.cost.small_stack import activity, lifecycle
from tests.infra.support import synth_payment_stack

PRICES = load_prices("us-east-1")
VOLUME = 20_000_000


def test_the_guidance_pays_standard_transitions_for_every_enriched_record() -> None:
    run = activity(records=100, approved=80)
    costing = cost(guidance_inventory(), guidance_activity(run), PRICES, VOLUME)
    # The small run enriches nothing (it has no TransactionEnriched events): no executions.
    assert not [i for i in costing.items if i.item == "workflow transitions (Standard)"]
    run.events = [
        *run.events[:100],
        *(
            type(e)("payments.enrichment", "TransactionEnriched", e.detail)
            for e in run.events[:100]
        ),
        *[e for e in run.events if e.detail_type == "TransactionApproved"],
    ]
    costing = cost(guidance_inventory(), guidance_activity(run), PRICES, VOLUME)
    transitions = next(i for i in costing.items if i.item == "workflow transitions (Standard)")
    assert transitions.per_million(VOLUME) == pytest.approx(
        GUIDANCE_TRANSITIONS * 1e6 * PRICES["stepfunctions.standard.transition"]
    )
    # One email per posted transaction, as the guidance's cost table has it.
    emails = next(i for i in costing.items if i.item == "email deliveries")
    assert emails.per_record == pytest.approx(0.8 * PRICES["sns.email_delivery"])
    traced = [i for i in costing.items if i.service == "X-Ray"]
    assert len(traced) == 3


def test_the_leaner_topology_takes_the_hops_off_the_bus() -> None:
    assert GIVES_UP
    assert "TransactionAuthorized" in DROPPED_FROM_BUS
    run = activity()
    lean = leaner_activity(run)
    assert all(e.detail_type not in DROPPED_FROM_BUS for e in lean.events)
    assert len(lean.events) < len(run.events)


@pytest.mark.slow
def test_the_leaner_inventory_feeds_the_workflow_from_the_pipe() -> None:
    _, template = synth_payment_stack("prod")
    deployed = inventory_from_template("prod", dict(template.to_json()))
    run = lifecycle()
    lean = leaner_inventory(deployed, run)
    pipe = lean.pipes[0]
    assert pipe.target[0] == "statemachine"
    assert pipe.window_seconds >= 1
    assert pipe.enrichment == "ScreenAndEnrich"
    assert len(lean.rules) == len(deployed.rules) - 2
    before = cost(deployed, run, PRICES, VOLUME)
    after = cost(lean, leaner_activity(run), PRICES, VOLUME)
    assert after.total("pipeline") < before.total("pipeline")
    # The ledger does not change.
    assert after.total("ledger") == pytest.approx(before.total("ledger"))
