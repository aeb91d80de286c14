"""Where a client stands in one stream, and how long to wait before reconnecting. Pure.

A :class:`StreamPosition` is the stream's epoch and the last seq the caller was given.
It decides three things, with no I/O:

=========================  =====================================================
question                   answer
=========================  =====================================================
what does a subscribe      nothing (live from now) until a position is known, then
send? (``resume_fields``)  ``{"epoch": E, "since": N}``
what does ``subscribed``   a recovered resume keeps ``last`` (the replay that follows
change? (``subscribed``)   fills in); a fresh subscription or a failed recovery
                           continues from the stream's newest seq, in its epoch
is this event new?         ``DELIVER`` (seq newer, same epoch: ``last`` moves),
(``accept``)               ``DUPLICATE`` (seq not newer: drop) or ``STALE`` (another
                           epoch: drop, and resubscribe so the server says what
                           happened); events without a seq are always delivered
=========================  =====================================================

:func:`backoff_delay` is the same full-jitter backoff as ``beacon.js``, and
:func:`reconnect_attempt` the same counting of attempts.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: First and largest reconnect ceilings, in seconds (as beacon.js: 500 ms → 20 s).
MIN_DELAY = 0.5
MAX_DELAY = 20.0


def backoff_delay(
    attempt: int,
    *,
    min_delay: float = MIN_DELAY,
    max_delay: float = MAX_DELAY,
    random: Callable[[], float] = _random.random,
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): full jitter.

    Uniform in ``[0, min(max_delay, min_delay * 2**attempt))``, so a crowd of clients
    that lost the same server spreads over the whole window instead of returning at once.
    """
    ceiling = min(max_delay, min_delay * 2.0 ** min(max(attempt, 0), 30))
    return random() * ceiling


#: Attempt to start from after these close codes: 4008 rate limited, 4429 too many
#: connections (slow down).
MIN_ATTEMPT_AFTER = {4008: 3, 4429: 5}

#: The credential expired (a token's ``exp`` passed): not a failure, so come back soon
#: with a fresh one.
CREDENTIAL_EXPIRED = 4401


def reconnect_attempt(attempt: int, code: int | None, *, welcomed: bool) -> int:
    """The backoff attempt for the reconnect after a socket closed with ``code``.

    Counting starts over once a socket was welcomed (the server was fine) and after
    4401; a server that asked to slow down is not retried sooner than its floor.
    """
    if welcomed or code == CREDENTIAL_EXPIRED:
        attempt = 0
    return max(attempt, MIN_ATTEMPT_AFTER.get(code or 0, 0))


class Verdict(Enum):
    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a ``subscribed`` frame meant for the position."""

    #: The subscribe carried a resume point (``since``).
    resumed: bool
    #: Nothing is missing between what the caller had and what follows.
    recovered: bool
    #: Why not, when not recovered: ``epoch_changed``, ``retention``, ``ahead_of_stream``.
    reason: str | None


class StreamPosition:
    """The epoch and last seq one subscription has handed to its caller."""

    __slots__ = ("epoch", "last")

    def __init__(self, *, epoch: str | None = None, since: int | None = None) -> None:
        self.epoch = epoch
        self.last = since

    def __repr__(self) -> str:
        return f"StreamPosition(epoch={self.epoch!r}, since={self.last!r})"

    def resume_fields(self) -> dict[str, Any]:
        """The ``epoch``/``since`` of a subscribe frame; empty for "live from now"."""
        if self.last is None:
            return {}
        if self.epoch is None:
            return {"since": self.last}
        return {"epoch": self.epoch, "since": self.last}

    def subscribed(self, frame: dict[str, Any]) -> Outcome:
        """Take a ``subscribed`` frame (an answer, or the server's own news of an epoch)."""
        resumed = self.last is not None
        recovered = frame.get("recovered") is not False
        epoch = frame.get("epoch")
        self.epoch = epoch if isinstance(epoch, str) else None
        if not resumed or not recovered:
            seq = frame.get("seq")
            self.last = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        reason = None if recovered else str(frame.get("reason") or "unknown")
        return Outcome(resumed=resumed, recovered=recovered, reason=reason)

    def accept(self, frame: dict[str, Any]) -> Verdict:
        """Judge one event frame; a delivered durable event moves ``last``."""
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return Verdict.DELIVER
        epoch = frame.get("epoch")
        if self.epoch is not None and epoch is not None and epoch != self.epoch:
            return Verdict.STALE
        if self.last is not None and seq <= self.last:
            return Verdict.DUPLICATE
        self.last = seq
        return Verdict.DELIVER
