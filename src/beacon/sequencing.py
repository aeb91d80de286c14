"""The per-subscription seq check that every live delivery passes. Pure.

A subscription remembers the last seq it sent. For an incoming event:

=================  ===========  ==============================================
incoming seq       verdict      what the consumer does
=================  ===========  ==============================================
``<= last``        DUPLICATE    drop it (the log watcher and the layer may both bring it)
``== last + 1``    DELIVER      send it; ``last`` becomes ``seq``
``> last + 1``     GAP          read ``last+1 .. seq`` from the log, send in order
=================  ===========  ==============================================

A gap means the channel layer dropped or reordered something; filling it from the
database turns a lost message into a little latency.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    DUPLICATE = "duplicate"
    DELIVER = "deliver"
    GAP = "gap"


def check(last: int, incoming: int) -> Verdict:
    """Judge an incoming seq against the last one sent."""
    if incoming <= last:
        return Verdict.DUPLICATE
    if incoming == last + 1:
        return Verdict.DELIVER
    return Verdict.GAP


def resume_point(
    *, client_epoch: str | None, since: int | None, epoch: str, last_seq: int, first_kept: int
) -> tuple[int, bool, str | None]:
    """Where a subscription starts: ``(replay_after, recovered, reason)``.

    ``since`` is the last seq the client has, ``last_seq`` the stream's newest,
    ``first_kept`` the oldest seq still in the log (``last_seq + 1`` when empty).
    Events after ``replay_after`` are replayed. Recovery fails — and says why — when
    the client's epoch is not the stream's, its seq is ahead of the stream, or the
    log no longer reaches back to the event after ``since``.
    """
    if since is None:
        return last_seq, True, None
    if client_epoch is not None and client_epoch != epoch:
        return last_seq, False, "epoch_changed"
    if since > last_seq:
        return last_seq, False, "ahead_of_stream"
    if since + 1 < first_kept:
        return last_seq, False, "retention"
    return since, True, None
