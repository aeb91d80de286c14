"""The per-subscription seq check and where a resume starts (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.sequencing import Verdict, check, replay_continues, resume_point


@pytest.mark.parametrize(
    ("last", "incoming", "verdict"),
    [
        (0, 1, Verdict.DELIVER),
        (4, 5, Verdict.DELIVER),
        (4, 4, Verdict.DUPLICATE),
        (4, 2, Verdict.DUPLICATE),
        (4, 6, Verdict.GAP),
        (0, 9, Verdict.GAP),
    ],
)
def test_check_judges_an_incoming_seq(last: int, incoming: int, verdict: Verdict) -> None:
    assert check(last, incoming) is verdict


@given(st.lists(st.integers(1, 30), max_size=60))
def test_check_delivers_each_seq_once_in_order_whatever_arrives(arrivals: list[int]) -> None:
    """Model the consumer: a gap is filled from a log holding every seq up to the max."""
    last, sent = 0, []
    for seq in arrivals:
        verdict = check(last, seq)
        if verdict is Verdict.GAP:
            sent.extend(range(last + 1, seq))
            verdict = Verdict.DELIVER
        if verdict is Verdict.DELIVER:
            sent.append(seq)
            last = seq
    assert sent == list(range(1, max(arrivals, default=0) + 1))


RESUMES = [
    # (client_epoch, since, epoch, last_seq, first_kept) -> (after, recovered, reason)
    ((None, None, "e", 10, 1), (10, True, None)),
    (("e", 4, "e", 10, 1), (4, True, None)),
    ((None, 4, "e", 10, 1), (4, True, None)),
    (("e", 10, "e", 10, 1), (10, True, None)),
    (("e", 0, "e", 10, 1), (0, True, None)),
    (("old", 4, "e", 10, 1), (10, False, "epoch_changed")),
    (("e", 11, "e", 10, 1), (10, False, "ahead_of_stream")),
    (("e", 4, "e", 10, 6), (10, False, "retention")),
    (("e", 5, "e", 10, 6), (5, True, None)),
    (("e", 10, "e", 10, 11), (10, True, None)),
]


@pytest.mark.parametrize(("args", "expected"), RESUMES)
def test_resume_point(args: tuple, expected: tuple) -> None:
    client_epoch, since, epoch, last_seq, first_kept = args
    assert (
        resume_point(
            client_epoch=client_epoch,
            since=since,
            epoch=epoch,
            last_seq=last_seq,
            first_kept=first_kept,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("last", "incoming", "epoch", "incoming_epoch", "verdict"),
    [
        (30, 1, "a", "b", Verdict.EPOCH),  # a new history's seq 1: not a duplicate
        (30, 31, "a", "b", Verdict.EPOCH),  # nor the next one of the old history
        (30, 31, "a", "a", Verdict.DELIVER),
        (30, 30, "a", "a", Verdict.DUPLICATE),
        (30, 31, "a", None, Verdict.DELIVER),  # a frame without an epoch: seq alone
    ],
)
def test_check_compares_epochs_before_seqs(
    last: int, incoming: int, epoch: str, incoming_epoch: str | None, verdict: Verdict
) -> None:
    assert check(last, incoming, epoch, incoming_epoch) is verdict


@pytest.mark.parametrize(
    ("after", "first", "last_seq", "continues"),
    [
        (4, 5, 9, True),
        (4, 7, 9, False),  # 5 and 6 were pruned after the position was read
        (9, None, 9, True),  # nothing to replay
        (4, None, 9, False),  # everything after 4 was pruned
        (0, 1, 3, True),
    ],
)
def test_replay_continues_only_right_after_the_resume_point(
    after: int, first: int | None, last_seq: int, continues: bool
) -> None:
    assert replay_continues(after, first, last_seq) is continues
