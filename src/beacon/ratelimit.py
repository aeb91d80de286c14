"""A token bucket: the per-connection limit on client frames. Pure; time is passed in.

Client frames cost one token each (:meth:`TokenBucket.take`; an empty bucket closes
the socket with 4008). A replay costs what it sends: one token per
:data:`REPLAY_EVENTS_PER_TOKEN` replayed events, spent from the same bucket with
:meth:`TokenBucket.spend`, which never takes it below :data:`REPLAY_KEEP` of its burst
and otherwise says how long to wait. So replays are paced, not refused, and the client
keeps tokens for its own frames after a long resume.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Replayed events that cost one token of the socket's bucket.
REPLAY_EVENTS_PER_TOKEN = 100
#: Share of the burst a replay leaves for the client's own frames.
REPLAY_KEEP = 0.5


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one frame costs one token."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def _refill(self, now: float) -> None:
        if self.tokens < 0:  # first use: start full
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens at time ``now``; False when the bucket is empty."""
        self._refill(now)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def spend(self, now: float, cost: float, *, keep: float = 0.0) -> float:
        """Spend ``cost`` tokens if at least ``keep`` remain; else seconds to wait first.

        Returns 0.0 when spent. A cost the bucket can never pay while keeping ``keep``
        is cut to what it can, so a wait always ends.
        """
        self._refill(now)
        cost = max(0.0, min(cost, self.burst - keep))
        if self.tokens - cost >= keep:
            self.tokens -= cost
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (keep + cost - self.tokens) / self.rate
