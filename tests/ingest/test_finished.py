"""The commit cap (pure): a partition commits only up to the offset after the last record the agent
finished; faust's acks for records it skipped never move the group."""

from __future__ import annotations

from clonedesk.ingest.domain.finished import FinishedOffsets


def test_nothing_finished_commits_nothing_and_says_what_it_held_back():
    finished = FinishedOffsets()
    assert finished.cap({"events:0": 5}, {"events:0": None}) == ({}, {"events:0": 5})


def test_a_commit_stops_after_the_last_finished_record():
    finished = FinishedOffsets()
    for offset in (3, 4):
        finished.finish("events:0", offset)
    # faust acked 5 and 6 too (skipped at a shutdown): the group moves to 5, not 7.
    assert finished.cap({"events:0": 7}, {"events:0": 3}) == ({"events:0": 5}, {"events:0": 7})
    # What faust wants within the finished records is committed as it is.
    assert finished.cap({"events:0": 4}, {"events:0": 3}) == ({"events:0": 4}, {})


def test_a_cap_that_would_not_move_the_group_forward_commits_nothing():
    finished = FinishedOffsets()
    finished.finish("events:0", 4)
    assert finished.cap({"events:0": 9}, {"events:0": 5}) == ({}, {"events:0": 9})


def test_partitions_are_capped_apart_and_a_record_read_again_never_lowers_the_cap():
    finished = FinishedOffsets()
    finished.finish("events:0", 8)
    finished.finish("events:1", 2)
    finished.finish("events:0", 6)  # read again after a seek back
    assert finished.cap({"events:0": 9, "events:1": 9}, {}) == ({"events:0": 9, "events:1": 3}, {"events:1": 9})
