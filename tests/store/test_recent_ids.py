"""The writer's in-memory filter of recently stored span ids (the dedupe of retried batches)."""

from __future__ import annotations

import random

from llmlens.store._recent_ids import RecentIds, id_hash


def test_finds_what_was_added_and_nothing_else() -> None:
    rng = random.Random(7)
    recent = RecentIds(capacity=200_000)
    added = [id_hash("default", f"{rng.getrandbits(64):016x}") for _ in range(50_000)]
    for start in range(0, len(added), 500):
        batch = added[start : start + 500]
        assert recent.contains_many(batch) == [False] * len(batch)
        recent.add_many(batch)
    assert len(recent) == 50_000
    assert all(recent.contains_many(added))
    fresh = [id_hash("default", f"{rng.getrandbits(64):016x}") for _ in range(50_000)]
    assert not any(recent.contains_many(fresh))


def test_same_span_id_in_another_project_is_not_a_duplicate() -> None:
    recent = RecentIds()
    recent.add_many([id_hash("a", "00f067aa0ba902b7")])
    assert recent.contains_many([id_hash("a", "00f067aa0ba902b7"), id_hash("b", "00f067aa0ba902b7")]) == [True, False]


def test_keeps_between_half_and_all_of_its_capacity_newest_first() -> None:
    recent = RecentIds(capacity=1_000)
    hashes = [id_hash("default", str(i)) for i in range(2_600)]
    recent.add_many(hashes)
    # Generations of 500: the last full one (2000-2499) and the young one (2500-2599) are kept.
    assert 500 <= len(recent) <= 1_000
    assert all(recent.contains_many(hashes[2_000:]))
    assert not any(recent.contains_many(hashes[:2_000]))


def test_the_smallest_and_largest_hashes() -> None:
    recent = RecentIds()
    recent.add_many([1, 2**64 - 1])
    assert recent.contains_many([1, 2**64 - 1, 3]) == [True, True, False]
