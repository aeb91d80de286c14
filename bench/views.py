"""Beacon's publish endpoint for the harness (``bench.publishplan``), in the server.

A plain synchronous view calling Beacon's public API, as application code would:
broadcast with ``beacon.publish("bench:all", "tick", data)``; per-user with
``beacon.notify(user_id, …)`` per message or ``beacon.notify_many(users, …)`` per
batch. Every event is durable (written to the database, delivered after commit).
"""

from __future__ import annotations

import json
import time

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse

import beacon

from . import publishplan

STREAM = "bench:all"
_user_ids: list[int] = []


def bench_user_ids() -> list[int]:
    if not _user_ids:
        users = get_user_model().objects.filter(username__startswith="bench")
        _user_ids.extend(users.order_by("username").values_list("pk", flat=True))
    return _user_ids


def publish(request: HttpRequest) -> HttpResponse:
    plan, rate, _ = publishplan.parse_query(request.GET.dict())
    user_ids = bench_user_ids() if plan.kind == "user" else []
    pad = "x" * int(request.GET.get("pad", 0))  # bigger events (slow-reader phase)
    stream = request.GET.get("stream", STREAM)  # bench:<anything> (slow-reader phase)
    started = time.monotonic()
    for done, (i, user_indexes) in enumerate(publishplan.calls(plan)):
        wait = publishplan.delay(started, done, rate, time.monotonic())
        if wait:
            time.sleep(wait)
        data = publishplan.data(i)
        if pad:
            data["pad"] = pad
        if plan.kind == "broadcast":
            beacon.publish(stream, "tick", data)
        elif plan.batch == 1:
            beacon.notify(user_ids[user_indexes[0]], "bench", **data)
        else:
            beacon.notify_many([user_ids[u] for u in user_indexes], "bench", **data)
    body = {"published": plan.count, "elapsed": time.monotonic() - started}
    return HttpResponse(json.dumps(body), content_type="application/json")


def objects(request: HttpRequest) -> HttpResponse:
    """Live Python objects by type: ``{type: [count, shallow bytes]}``.

    For finding what an idle connection holds. Only objects the garbage collector
    tracks are seen (not ``str``, ``bytes``, buffers kept by C code).
    """
    import gc
    import sys
    from collections import Counter

    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for o in gc.get_objects():
        name = type(o).__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(o)
    top = counts.most_common(int(request.GET.get("top", 40)))
    body = {name: [count, sizes[name]] for name, count in top}
    return HttpResponse(json.dumps(body), content_type="application/json")
