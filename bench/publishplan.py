"""The publish endpoint every benchmarked server exposes, and its pacing. No I/O.

``GET /bench/publish?kind=broadcast|user&start=I&count=K&rate=R&users=U&batch=B``
publishes ``K`` messages with ids from ``I`` (see ``stats.Plan``), ``R`` per second
(0: as fast as possible), and answers ``{"published": K, "elapsed": seconds}``.
Each message's data is ``{"i": id, "t": send time, "pad": …}``: about 100 bytes of
JSON on the wire, whichever server frames it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from .stats import Plan

PAD = "x" * 24


def parse_query(query: str | Mapping[str, str]) -> tuple[Plan, float, int]:
    """``(plan, rate, drop)`` from a query string or a mapping of its values."""
    if isinstance(query, str):
        values = {k: v[0] for k, v in parse_qs(query).items()}
    else:
        values = dict(query)
    plan = Plan(
        kind=values.get("kind", "broadcast"),
        start=int(values.get("start", 0)),
        count=int(values.get("count", 1)),
        users=max(1, int(values.get("users", 1))),
        batch=max(1, int(values.get("batch", 1))),
    )
    return plan, float(values.get("rate", 0)), int(values.get("drop", -1))


def data(i: int) -> dict[str, object]:
    return {"i": i, "t": time.time(), "pad": PAD}


def calls(plan: Plan) -> list[tuple[int, list[int]]]:
    """The publish calls of a plan: ``(id, user indexes)``; broadcasts have no users."""
    if plan.kind == "broadcast":
        return [(plan.start + k, []) for k in range(plan.count)]
    out = []
    for first in range(0, plan.count, plan.batch):
        ks = range(first, min(first + plan.batch, plan.count))
        out.append((plan.start + first, [k % plan.users for k in ks]))
    return out


def delay(started: float, done: int, rate: float, now: float) -> float:
    """Seconds to wait before call number ``done`` to keep ``rate`` calls/s (0: none)."""
    if rate <= 0:
        return 0.0
    return max(0.0, started + done / rate - now)
