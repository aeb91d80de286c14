"""The per-subscription seq check that every live delivery passes. Pure.

A subscription remembers the last seq it sent. For an incoming event:

=================  ===========  ==============================================
incoming seq       verdict      what the consumer does
=================  ===========  ==============================================
``<= last``        DUPLICATE    drop it (the log watcher and the layer may both bring it)
``== last + 1``    DELIVER      send it; ``last`` becomes ``seq``
``> last + 1``     GAP          read ``last+1 .. seq`` from the log, send in order
another epoch      EPOCH        look up the stream's epoch: a stale frame is dropped,
                                a new history is announced to the client
=================  ===========  ==============================================

A gap means the channel layer dropped or reordered something; filling it from the
database turns a lost message into a little latency. Seqs of two epochs are not
comparable (a stream deleted and recreated counts from 1 again), so the epoch is
checked first: a new epoch's events are neither duplicates nor the next of the old.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    DUPLICATE = "duplicate"
    DELIVER = "deliver"
    GAP = "gap"
    EPOCH = "epoch"


def check(
    last: int, incoming: int, epoch: str | None = None, incoming_epoch: str | None = None
) -> Verdict:
    """Judge an incoming seq (of ``incoming_epoch``) against the last one sent (of ``epoch``)."""
    if epoch is not None and incoming_epoch is not None and incoming_epoch != epoch:
        return Verdict.EPOCH
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


def replay_continues(after: int, first: int | None, last_seq: int) -> bool:
    """Does a read of the log "after seq ``after``" start right after it?

    ``first`` is the first seq the read returned (None: it returned nothing),
    ``last_seq`` the newest seq the stream had before the read. False means the
    events after ``after`` were pruned between the position read and this read.
    """
    if first is None:
        return after >= last_seq
    return first == after + 1
