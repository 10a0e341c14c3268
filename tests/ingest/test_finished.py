"""The commit cap (pure): a partition commits only up to the first record the agent did not finish,
counted from the group's committed offset; faust's acks for records it let go by never move the group."""

from __future__ import annotations

from clonedesk.ingest.domain.finished import FinishedOffsets


def test_nothing_finished_commits_nothing_and_says_what_it_held_back():
    finished = FinishedOffsets()
    assert finished.cap({"events:0": 5}, {"events:0": None}) == ({}, {"events:0": 5})
    assert finished.cap({"events:0": 5}, {"events:0": 3}) == ({}, {"events:0": 5})


def test_a_commit_stops_at_the_first_record_not_finished():
    finished = FinishedOffsets()
    for offset in (3, 4):
        finished.finish("events:0", offset)
    # faust acked 5 and 6 too (skipped at a shutdown): the group moves to 5, not 7.
    assert finished.cap({"events:0": 7}, {"events:0": 3}) == ({"events:0": 5}, {"events:0": 7})
    # What faust wants within the finished records is committed as it is.
    assert finished.cap({"events:0": 4}, {"events:0": 3}) == ({"events:0": 4}, {})


def test_a_record_let_go_by_right_after_the_commit_holds_the_group_even_when_the_next_one_finished():
    """faust's fetcher dropped 32 and the agent finished 33: faust wants 34; the group must stay at 32."""
    finished = FinishedOffsets()
    finished.finish("events:1", 33)
    assert finished.cap({"events:1": 34}, {"events:1": 32}) == ({}, {"events:1": 34})
    finished.finish("events:1", 32)  # read again after the stall watch's seek back
    finished.finish("events:1", 33)
    assert finished.cap({"events:1": 34}, {"events:1": 32}) == ({"events:1": 34}, {})


def test_a_group_with_no_commit_counts_from_the_first_finished_record():
    finished = FinishedOffsets()
    for offset in (0, 1, 3):
        finished.finish("events:0", offset)
    assert finished.cap({"events:0": 4}, {}) == ({"events:0": 2}, {"events:0": 4})


def test_partitions_are_capped_apart_and_what_is_committed_is_forgotten():
    finished = FinishedOffsets()
    for offset in (8, 9, 10):
        finished.finish("events:0", offset)
    finished.finish("events:1", 2)
    assert finished.cap({"events:0": 11, "events:1": 9}, {"events:0": 8, "events:1": 2}) == (
        {"events:0": 11, "events:1": 3}, {"events:1": 9})
    assert finished.reach("events:0", 11) == 11 and finished._done["events:0"] == set()
