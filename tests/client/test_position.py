"""The client's pure bookkeeping: resume fields, ``subscribed`` answers, event verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from beacon.client.position import (
    MAX_DELAY,
    StreamPosition,
    Verdict,
    backoff_delay,
    reconnect_attempt,
)


@pytest.mark.parametrize(
    ("epoch", "since", "fields"),
    [
        (None, None, {}),
        (None, 0, {"since": 0}),
        ("e1", 41, {"epoch": "e1", "since": 41}),
    ],
)
def test_resume_fields_say_live_or_where_to_resume(
    epoch: str | None, since: int | None, fields: dict[str, Any]
) -> None:
    assert StreamPosition(epoch=epoch, since=since).resume_fields() == fields


@pytest.mark.parametrize(
    ("since", "frame", "last", "resumed", "recovered", "reason"),
    [
        # A fresh subscription continues from the stream's newest seq.
        (None, {"epoch": "e1", "seq": 44, "recovered": True}, 44, False, True, None),
        # A recovered resume keeps its place: the replay that follows fills in.
        (41, {"epoch": "e1", "seq": 44, "recovered": True}, 41, True, True, None),
        # A failed resume continues from the newest seq, and says why.
        (41, {"epoch": "e2", "seq": 3, "recovered": False, "reason": "epoch_changed"},
         3, True, False, "epoch_changed"),
        (41, {"epoch": "e1", "seq": 90, "recovered": False, "reason": "retention"},
         90, True, False, "retention"),
        (41, {"epoch": "e1", "seq": 9, "recovered": False}, 9, True, False, "unknown"),
    ],
)
def test_subscribed_moves_the_position_only_when_recovery_failed_or_fresh(
    since: int | None,
    frame: dict[str, Any],
    last: int,
    resumed: bool,
    recovered: bool,
    reason: str | None,
) -> None:
    position = StreamPosition(epoch="e1" if since is not None else None, since=since)
    outcome = position.subscribed(frame)
    assert (position.epoch, position.last) == (frame["epoch"], last)
    assert (outcome.resumed, outcome.recovered, outcome.reason) == (resumed, recovered, reason)


@pytest.mark.parametrize(
    ("frame", "verdict", "last"),
    [
        ({"seq": 6, "epoch": "e1"}, Verdict.DELIVER, 6),
        ({"seq": 9, "epoch": "e1"}, Verdict.DELIVER, 9),  # a gap is the server's to fill
        ({"seq": 5, "epoch": "e1"}, Verdict.DUPLICATE, 5),
        ({"seq": 2, "epoch": "e1"}, Verdict.DUPLICATE, 5),
        ({"seq": 6, "epoch": "e2"}, Verdict.STALE, 5),
        ({"seq": 1, "epoch": "e2"}, Verdict.STALE, 5),
        ({"type": "typing"}, Verdict.DELIVER, 5),  # ephemeral: no seq
        ({"seq": True, "epoch": "e1"}, Verdict.DELIVER, 5),  # not a seq at all
    ],
)
def test_accept_delivers_newer_drops_duplicates_and_flags_other_epochs(
    frame: dict[str, Any], verdict: Verdict, last: int
) -> None:
    position = StreamPosition(epoch="e1", since=5)
    assert position.accept(frame) is verdict
    assert position.last == last


def test_a_replay_overlapping_what_was_delivered_comes_through_once() -> None:
    position = StreamPosition()
    position.subscribed({"epoch": "e1", "seq": 0, "recovered": True})
    seen = [
        seq
        for seq in (1, 2, 3, 2, 3, 4, 4, 5)
        if position.accept({"seq": seq, "epoch": "e1"}) is Verdict.DELIVER
    ]
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(-1, 0.5), (0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, MAX_DELAY), (100, MAX_DELAY)],
)
def test_backoff_is_full_jitter_from_half_a_second_to_twenty(attempt: int, ceiling: float) -> None:
    assert backoff_delay(attempt, random=lambda: 0.0) == 0.0
    assert backoff_delay(attempt, random=lambda: 0.5) == pytest.approx(ceiling / 2)
    assert backoff_delay(attempt, random=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)


@pytest.mark.parametrize(
    ("attempt", "code", "welcomed", "next_attempt"),
    [
        (4, 1006, False, 4),  # the server is still away: keep backing off
        (4, 4012, True, 0),  # it was fine until it restarted: start over
        (0, 4008, True, 3),  # rate limited: slow down
        (1, 4429, False, 5),  # too many connections: slow down more
        (7, 4429, False, 7),
        (6, 4401, False, 0),  # credential expired: come back soon with a new one
        (2, None, False, 2),  # could not connect at all
    ],
)
def test_reconnect_attempts_start_over_after_a_welcome_and_slow_down_when_told(
    attempt: int, code: int | None, welcomed: bool, next_attempt: int
) -> None:
    assert reconnect_attempt(attempt, code, welcomed=welcomed) == next_attempt
