"""Pure arithmetic of the harness: percentiles, expected ids, loss. No I/O.

Every published message carries an integer id ``i`` and its send time ``t``. A load
generator records, per socket, the ids it received; what a socket should have
received is derived from the publish plan alone (:func:`expected_ids`), so a message
that never arrives is counted as lost whatever the server believes it sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Plan:
    """What one publish run sends, and so who should get what.

    ``kind`` ``"broadcast"``: ids ``start .. start+count-1`` go to every socket.
    ``kind`` ``"user"``: message ``k`` goes to user ``k % users``; with ``batch`` > 1,
    ``batch`` consecutive messages are one publish call (``notify_many``) sharing the id
    of the first, so a socket receives each batch id at most once.
    """

    kind: str
    start: int
    count: int
    users: int = 1
    batch: int = 1

    def ids_for(self, user_index: int) -> set[int]:
        """The ids a socket of user ``user_index`` must receive."""
        if self.kind == "broadcast":
            return set(range(self.start, self.start + self.count))
        return {
            self.start + (k // self.batch) * self.batch
            for k in range(user_index % self.users, self.count, self.users)
        }

    def deliveries(self, sockets: int) -> int:
        """Total deliveries owed to ``sockets`` sockets (socket j is user ``j % users``)."""
        if self.kind == "broadcast":
            return self.count * sockets
        return sum(len(self.ids_for(j)) for j in range(min(sockets, self.users)))


@dataclass(frozen=True, slots=True)
class Tally:
    """What sockets received of what they were owed."""

    expected: int
    received: int
    duplicates: int
    seq_errors: int

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.expected + other.expected,
            self.received + other.received,
            self.duplicates + other.duplicates,
            self.seq_errors + other.seq_errors,
        )


def tally(owed: set[int], got: Iterable[int], duplicates: int = 0, seq_errors: int = 0) -> Tally:
    """Count one socket: ``got`` holds the distinct ids it received."""
    received = len(owed.intersection(got))
    return Tally(len(owed), received, duplicates, seq_errors)


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan
