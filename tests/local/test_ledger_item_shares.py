"""The hot-item measurement counts what the ledger writes, and house legs spread over shards."""

from __future__ import annotations

from payment_local.ledger_item_shares import measure


def test_no_house_item_takes_much_more_than_one_writers_share_of_transfers() -> None:
    shares = measure(240, 16, writers=8)
    assert shares.transfers == 240
    key, share = shares.largest_house_item
    assert key.startswith("HOUSE#CLEARING-EUR/SHARD#")
    # Eight writers on eight leased shards: 1/8 = 12.5% on average, plus the draw; a single
    # clearing item would be 98%.
    assert 0.1 <= share < 0.25


def test_with_one_shard_the_clearing_item_is_written_by_nearly_every_transfer() -> None:
    key, share = measure(60, 1, writers=4).largest_house_item
    assert key == "HOUSE#CLEARING-EUR/SHARD#00"
    assert share > 0.9
