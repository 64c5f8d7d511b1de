from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from payment_posting_functions.domain.dedup import (
    FIRST_SIGHTING,
    FingerprintEntry,
    InMemoryFingerprintStore,
    Sighting,
    Verdict,
    judge,
    within_window,
)

WINDOW = 10_000  # ms


def test_first_sighting_owns_the_fingerprint() -> None:
    assert judge(None, Sighting("A", 0), WINDOW) == FIRST_SIGHTING


def test_window_is_inclusive_at_its_edge() -> None:
    entry = FingerprintEntry(owner=Sighting("A", 0))
    assert judge(entry, Sighting("B", WINDOW), WINDOW) == Verdict("A")
    assert judge(entry, Sighting("B", WINDOW + 1), WINDOW) == FIRST_SIGHTING


def test_window_applies_on_both_sides_for_out_of_order_records() -> None:
    entry = FingerprintEntry(owner=Sighting("A", 50_000))
    assert judge(entry, Sighting("B", 50_000 - WINDOW), WINDOW) == Verdict("A")
    assert judge(entry, Sighting("B", 50_000 - WINDOW - 1), WINDOW) == FIRST_SIGHTING
    assert within_window(5, 5, 0)


def test_rerun_of_the_owner_is_never_its_own_duplicate() -> None:
    store = InMemoryFingerprintStore()
    assert store.screen("f", Sighting("A", 0), WINDOW) == FIRST_SIGHTING
    assert store.screen("f", Sighting("A", 0), WINDOW) == FIRST_SIGHTING


def test_rerun_of_a_duplicate_repeats_its_verdict() -> None:
    store = InMemoryFingerprintStore()
    store.screen("f", Sighting("A", 0), WINDOW)
    assert store.screen("f", Sighting("B", 500), WINDOW) == Verdict("A")
    assert store.screen("f", Sighting("B", 500), WINDOW) == Verdict("A")


def test_verdict_survives_the_fingerprint_being_taken_over() -> None:
    # C arrives outside A's window and takes the fingerprint over; a re-run of the batch
    # holding B (a duplicate of A) must still say "duplicate of A", not "first".
    store = InMemoryFingerprintStore()
    store.screen("f", Sighting("A", 0), WINDOW)
    store.screen("f", Sighting("B", 500), WINDOW)
    assert store.screen("f", Sighting("C", 2 * WINDOW), WINDOW) == FIRST_SIGHTING
    assert store.screen("f", Sighting("B", 500), WINDOW) == Verdict("A")
    assert store.screen("f", Sighting("D", 2 * WINDOW + 1), WINDOW) == Verdict("C")


def test_different_fingerprints_do_not_interact() -> None:
    store = InMemoryFingerprintStore()
    store.screen("f", Sighting("A", 0), WINDOW)
    assert store.screen("g", Sighting("B", 0), WINDOW) == FIRST_SIGHTING


sightings = st.lists(
    st.tuples(
        st.sampled_from("fg"),  # two fingerprints
        st.sampled_from("ABCDEF"),  # transaction ids
        st.integers(min_value=0, max_value=5 * WINDOW),
    ),
    min_size=1,
    max_size=30,
)


@given(sightings, st.data())
def test_reruns_repeat_verdicts_and_nothing_is_its_own_duplicate(
    batch: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    # A transaction id has one fingerprint and one time, as a table record does.
    records: dict[str, tuple[str, int]] = {}
    for fp, tx, at in batch:
        records.setdefault(tx, (fp, at))
    store = InMemoryFingerprintStore()
    verdicts = {tx: store.screen(fp, Sighting(tx, at), WINDOW) for tx, (fp, at) in records.items()}
    # Pipes re-runs failed batches later, in any order; verdicts must not move.
    reruns = data.draw(st.lists(st.sampled_from(sorted(records)), max_size=40))
    for tx in reruns:
        fp, at = records[tx]
        verdict = store.screen(fp, Sighting(tx, at), WINDOW)
        assert verdict == verdicts[tx]
        assert verdict.duplicate_of != tx


def test_a_first_sighting_stays_first_after_the_fingerprint_changed_hands_twice() -> None:
    # D owns; Y (outside D's window) takes over; Z (outside Y's window but inside D's) takes
    # over again. Re-running D must still say "first", not "duplicate of Z".
    store = InMemoryFingerprintStore()
    assert store.screen("f", Sighting("D", 0), WINDOW) == FIRST_SIGHTING
    assert store.screen("f", Sighting("Y", WINDOW + 1), WINDOW) == FIRST_SIGHTING
    assert store.screen("f", Sighting("Z", -WINDOW), WINDOW) == FIRST_SIGHTING
    assert store.screen("f", Sighting("D", 0), WINDOW) == FIRST_SIGHTING
