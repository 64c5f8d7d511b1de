"""The cost model read from small templates: a setting in the template moves the line item it
should, in the right direction, by the right arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from payment_cost import assumptions as a
from payment_cost.model import Costing, LineItem, cost
from payment_cost.prices import load_prices
from payment_cost.template import inventory_from_template
from tests.cost.small_stack import activity, template

VOLUME = 20_000_000
PRICES = load_prices("us-east-1")


def costed(t: dict[str, Any], volume: int = VOLUME) -> Costing:
    return cost(inventory_from_template("Small", t), activity(), PRICES, volume)


def item(costing: Costing, name: str) -> LineItem:
    found = [i for i in costing.items if i.item == name]
    assert len(found) == 1, [i.item for i in costing.items]
    return found[0]


def per_million(t: dict[str, Any], name: str) -> float:
    costing = costed(t)
    return item(costing, name).per_million(costing.volume)


def test_doubling_memory_doubles_the_duration_cost() -> None:
    base = template()
    bigger = template()
    bigger["Resources"]["Enrich"]["Properties"]["MemorySize"] = 512
    assert per_million(bigger, "enrichment duration") == pytest.approx(
        2 * per_million(base, "enrichment duration")
    )
    # One event per record invokes it: 35 ms at 0.25 GB at the arm64 price.
    expected = 1e6 * 0.25 * 0.035 * PRICES["lambda.gb_second.arm64"]
    assert per_million(base, "enrichment duration") == pytest.approx(expected)


def test_x86_costs_more_than_arm64() -> None:
    t = template()
    t["Resources"]["Enrich"]["Properties"]["Architectures"] = ["x86_64"]
    ratio = PRICES["lambda.gb_second.x86_64"] / PRICES["lambda.gb_second.arm64"]
    assert per_million(t, "enrichment duration") == pytest.approx(
        ratio * per_million(template(), "enrichment duration")
    )


def test_a_batching_window_on_the_queue_makes_fewer_posting_invocations() -> None:
    t = template()
    t["Resources"]["Mapping"]["Properties"]["MaximumBatchingWindowInSeconds"] = 5
    without = per_million(template(), "posting requests")
    with_window = per_million(t, "posting requests")
    # 0.8 approved per record at 20M a month: 6.09 messages/s; a 5 s window shared by five
    # pollers gathers 6.09 each.
    rate = 0.8 * VOLUME / a.SECONDS_PER_MONTH
    batch = rate * 5 / a.SQS_POLLERS
    assert without == pytest.approx(0.8 * 1e6 * PRICES["lambda.request"])
    assert with_window == pytest.approx(without / batch)


def test_the_batch_size_caps_what_a_window_gathers() -> None:
    t = template()
    t["Resources"]["Mapping"]["Properties"].update(MaximumBatchingWindowInSeconds=60, BatchSize=10)
    assert per_million(t, "posting requests") == pytest.approx(
        0.8 * 1e6 * PRICES["lambda.request"] / 10
    )


def test_a_pipe_window_cuts_pipe_requests_and_dedup_invocations() -> None:
    t = template()
    t["Resources"]["Pipe"]["Properties"]["SourceParameters"]["DynamoDBStreamParameters"][
        "MaximumBatchingWindowInSeconds"
    ] = 1
    # 7.6 a second, spread over the stream's shards, one batch at a time on each.
    rate = VOLUME / a.SECONDS_PER_MONTH / a.STREAM_SHARDS
    assert per_million(template(), "pipe requests") == pytest.approx(
        1e6 * PRICES["eventbridge.pipes.request"]
    )
    assert per_million(t, "pipe requests") == pytest.approx(
        1e6 * PRICES["eventbridge.pipes.request"] / rate
    )
    assert per_million(t, "ingest-dedup requests") < per_million(
        template(), "ingest-dedup requests"
    )


def test_active_tracing_samples_one_a_second_and_five_percent_of_the_rest() -> None:
    t = template()
    t["Resources"]["Enrich"]["Properties"]["TracingConfig"] = {"Mode": "Active"}
    costing = costed(t)
    traced = item(costing, "enrichment traces (Active, default rule)")
    rate = VOLUME / a.SECONDS_PER_MONTH
    sampled = 1 + 0.05 * (rate - 1)
    assert traced.per_million(VOLUME) == pytest.approx(
        sampled / rate * 1e6 * PRICES["xray.trace_recorded"]
    )
    # Far less than a trace per invocation, and nothing for a function passing traces through.
    assert traced.per_million(VOLUME) < 0.25 * 1e6 * PRICES["xray.trace_recorded"]
    assert not [i for i in costed(template()).items if i.service == "X-Ray"]


def test_a_higher_log_level_keeps_only_the_lines_at_or_above_it() -> None:
    t = template()
    t["Resources"]["Enrich"]["Properties"]["LoggingConfig"]["ApplicationLogLevel"] = "WARN"
    info = per_million(template(), "enrichment logs ingested")
    warn = per_million(t, "enrichment logs ingested")
    assert info == pytest.approx(600 / 1e9 * 1e6 * PRICES["logs.ingest_gb"])
    assert warn == pytest.approx(info * 100 / 600)


def test_platform_lines_are_paid_for_when_the_system_level_keeps_info() -> None:
    t = template()
    t["Resources"]["Enrich"]["Properties"]["LoggingConfig"]["SystemLogLevel"] = "INFO"
    extra = per_million(t, "enrichment logs ingested") - per_million(
        template(), "enrichment logs ingested"
    )
    assert extra == pytest.approx(a.PLATFORM_LOG_BYTES / 1e9 * 1e6 * PRICES["logs.ingest_gb"])


def test_log_storage_follows_the_retention() -> None:
    t = template()
    t["Resources"]["EnrichLogs"]["Properties"]["RetentionInDays"] = 365
    assert per_million(t, "enrichment logs stored") == pytest.approx(
        per_million(template(), "enrichment logs stored") * 365 / 30
    )


def test_archive_storage_follows_its_retention_and_pattern() -> None:
    t = template()
    t["Resources"]["Archive"]["Properties"]["RetentionDays"] = 90
    assert per_million(t, "archive: storage") == pytest.approx(
        3 * per_million(template(), "archive: storage")
    )
    everything = template()
    del everything["Resources"]["Archive"]["Properties"]["EventPattern"]["detail-type"]
    assert per_million(everything, "archive: events archived") > per_million(
        template(), "archive: events archived"
    )


def test_every_event_on_the_bus_is_paid_for() -> None:
    # 1 authorized + 0.8 approved per record.
    assert per_million(template(), "events put on the bus") == pytest.approx(
        1.8 * 1e6 * PRICES["eventbridge.custom_event"]
    )


def test_fixed_costs_are_spread_over_the_volume() -> None:
    t = template()
    small, large = costed(t, 1_000_000), costed(t, 10_000_000)
    key_small, key_large = item(small, "key Key"), item(large, "key Key")
    assert key_small.per_million(small.volume) == pytest.approx(PRICES["kms.key_month"])
    assert key_large.per_million(large.volume) == pytest.approx(PRICES["kms.key_month"] / 10)


def test_queue_kms_requests_follow_the_data_key_reuse_period() -> None:
    t = template()
    t["Resources"]["Queue"]["Properties"]["KmsDataKeyReusePeriodSeconds"] = 3600
    short = item(costed(template()), "key Key requests").monthly_fixed
    long = item(costed(t), "key Key requests").monthly_fixed
    assert long < short
    queue_part = a.SECONDS_PER_MONTH / 300 * 3 * PRICES["kms.request"]
    assert short - long == pytest.approx(queue_part * (1 - 300 / 3600))


def test_metric_lines_are_dropped_with_the_info_lines() -> None:
    act = activity()
    act.custom_metrics = {("PaymentPosting", "IngestLag", ("service",))}
    inventory = inventory_from_template("Small", template())
    kept = cost(inventory, act, PRICES, VOLUME)
    assert item(kept, "custom metrics (embedded metric format)").monthly_fixed == pytest.approx(
        PRICES["cloudwatch.custom_metric_month"]
    )
    warn = template()
    for name in ("Dedup", "Enrich", "Poster"):
        warn["Resources"][name]["Properties"]["LoggingConfig"]["ApplicationLogLevel"] = "WARN"
    dropped = cost(inventory_from_template("Small", warn), act, PRICES, VOLUME)
    assert not [i for i in dropped.items if i.item.startswith("custom metrics")]
    assert any("IngestLag" in note and "dropped" in note for note in dropped.notes)


def test_a_function_without_a_profile_is_priced_at_the_default_and_said_so() -> None:
    t = template()
    t["Resources"]["Enrich"]["Properties"]["Environment"]["Variables"][
        "POWERTOOLS_SERVICE_NAME"
    ] = "something-new"
    costing = costed(t)
    assert any("something-new: no duration profile" in note for note in costing.notes)
    expected = 1e6 * 0.25 * a.DEFAULT_PROFILE.base_ms / 1000 * PRICES["lambda.gb_second.arm64"]
    assert item(costing, "something-new duration").per_million(VOLUME) == pytest.approx(expected)
