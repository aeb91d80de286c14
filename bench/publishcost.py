"""What one durable notification costs the publisher: ``python -m bench.publishcost``.

Runs ``notify()`` and ``notify_many()`` against the benchmark database in this
process (no server, no sockets) and prints wall and CPU time per notification and
the SQL statements of one ``notify()``. Pin it like a server for comparable figures:
``taskset -c 0 python -m bench.publishcost``.

``--redis URL`` then measures delivery over the Redis pubsub layer across two
processes: a receiver process (a hub subscribed to every user's stream, its log
watcher slowed so that only the layer brings events) counts arrivals while this
process writes ``--total`` notifications with ``notify_many`` in batches of
``--users``. It prints written/s, delivered/s and how many were lost.

``--json`` then prints the figures as one JSON line (``python -m bench.run`` reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any

from . import database


def receive(args: argparse.Namespace) -> None:
    """The ``--receive`` mode: another process's hub, counting what the layer brings."""
    database.setup_django(args.url)
    from django.contrib.auth import get_user_model

    from beacon import eventlog

    names = [f"user:{pk}" for pk in get_user_model().objects.values_list("pk", flat=True)]
    start = {name: eventlog.position(name).last_seq for name in names}  # type: ignore[union-attr]
    asyncio.run(_receive(args, start))


async def _receive(args: argparse.Namespace, start: dict[str, int]) -> None:
    try:
        from beacon.fanout.hub import Hub
    except ImportError:  # the code before the fan-out package
        from beacon.hub import Hub  # type: ignore[no-redef]

    arrived = 0
    first = last = 0.0
    done = asyncio.Event()

    class Sink:
        def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
            nonlocal arrived, first, last
            if seq is None:
                return
            arrived += 1
            last = time.time()
            first = first or last
            if arrived >= args.total:
                done.set()

        async def close(self, code: Any) -> None:
            pass

    hub = Hub(asyncio.get_running_loop())
    sink = Sink()
    await hub.attach(sink)  # starts the receive loop
    for name, seq in start.items():
        await hub.add(name, sink, seq)
    print("ready", flush=True)
    cpu = time.process_time()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), args.timeout)
    cpu = time.process_time() - cpu
    print(json.dumps({"arrived": arrived, "first": first, "last": last, "cpu": cpu}), flush=True)


def redis_delivery(args: argparse.Namespace, users: list[Any]) -> dict[str, Any]:
    import beacon

    try:
        from beacon.fanout import relay
    except ImportError:  # the code before the fan-out package
        from beacon import transport as relay  # type: ignore[no-redef]

    env = dict(os.environ, BEACON_LOG_POLL_SECONDS="600")
    command = [sys.executable, "-m", "bench.publishcost", "--receive", "--url", args.url]
    command += ["--total", str(args.total), "--redis", args.redis]
    if args.receiver_cpu is not None:
        command = ["taskset", "-c", args.receiver_cpu, *command]
    receiver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        batches = args.total // len(users)
        wall, cpu, began = time.perf_counter(), time.process_time(), time.time()
        for k in range(batches):
            beacon.notify_many(users, "x", i=k)
        written = time.perf_counter() - wall
        committed = time.time()
        relay.flush(60)
        cpu = time.process_time() - cpu
        result = json.loads(receiver.stdout.readline())
    finally:
        receiver.wait(args.timeout + 30)
    total = batches * len(users)
    delivered = result["last"] - began
    figures = {
        "redis_batches": batches,
        "redis_batch": len(users),
        "redis_written_per_s": total / written,
        "redis_delivered_per_s": result["arrived"] / delivered if delivered > 0 else 0.0,
        "redis_lost": total - result["arrived"],
        "redis_publisher_cpu_ms": cpu / total * 1e3,
    }
    print(
        f"Redis pubsub, notify_many x {batches} batches of {len(users)}, another process: "
        f"written {figures['redis_written_per_s']:,.0f}/s, "
        f"delivered {figures['redis_delivered_per_s']:,.0f}/s, "
        f"lost {figures['redis_lost']}, publisher CPU "
        f"{figures['redis_publisher_cpu_ms']:.3f} ms/notification"
    )
    # The receiver keeps up if its last arrival trails the last commit by about one
    # batch's delivery, not by a backlog that grows with --total.
    print(
        f"   last arrival {(result['last'] - committed) * 1e3:.0f} ms after the last commit "
        f"(one batch takes {written / batches * 1e3:.0f} ms to write); receiver CPU "
        f"{result.get('cpu', 0) / max(result['arrived'], 1) * 1e3:.3f} ms/delivery"
    )
    figures["redis_trail_ms"] = (result["last"] - committed) * 1e3
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publishcost", description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--url", default=database.DEFAULT_URL, help="PostgreSQL database")
    parser.add_argument("--redis", help="also measure delivery over this Redis (pubsub)")
    parser.add_argument("--total", type=int, default=20_000, help="notifications, with --redis")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--receiver-cpu", help="pin the receiver process (taskset -c)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.redis:
        os.environ["REDIS_URL"] = args.redis
        os.environ.setdefault("BEACON_REDIS_PREFIX", f"publishcost{os.getpid()}")
    if args.receive:
        receive(args)
        return
    database.create_database(args.url)
    database.setup_django(args.url)
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import beacon

    call_command("migrate", verbosity=0)
    users = [u.pk for u in database.make_users(args.users)]

    figures: dict[str, Any] = {"count": args.count, "users": len(users)}

    def timed(label: str, key: str, calls: int, per_call: int, fn: object) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(calls):
            fn(k)  # type: ignore[operator]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = calls * per_call
        figures[f"{key}_wall_ms"], figures[f"{key}_cpu_ms"] = wall / n * 1e3, cpu / n * 1e3
        print(f"{label}: {wall / n * 1e3:.2f} ms wall, {cpu / n * 1e3:.2f} ms CPU per notification")

    notify = lambda k: beacon.notify(users[k % len(users)], "x", i=k)  # noqa: E731
    timed("notify()", "notify", args.count, 1, notify)
    # The same once every user's stream exists (above, the first --users calls made them).
    timed("notify(), streams existing", "notify_existing", args.count, 1, notify)
    batches = max(10, args.count // len(users))
    many = lambda k: beacon.notify_many(users, "x", i=k)  # noqa: E731
    timed("notify_many()", "notify_many", batches, len(users), many)
    with CaptureQueriesContext(connection) as queries:
        beacon.notify(users[0], "x", i=0)
    figures["notify_statements"] = len(queries.captured_queries)
    print(f"one notify(): {len(queries.captured_queries)} statements")
    for q in queries.captured_queries:
        print("   ", q["sql"][:110])
    timings: list[tuple[str, float]] = []

    def timed_statement(execute: Any, sql: str, *rest: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, *rest)
        finally:
            timings.append((sql, time.perf_counter() - began))

    wall = time.perf_counter()
    with connection.execute_wrapper(timed_statement):
        beacon.notify_many(users, "x", i=0)
    wall = time.perf_counter() - wall
    print(
        f"one notify_many() of {len(users)}: {wall * 1e3:.1f} ms wall, "
        f"{sum(t for _, t in timings) * 1e3:.1f} ms of it in {len(timings)} statements"
    )
    for sql, took in timings:
        print(f"   {took * 1e3:6.1f} ms  {sql[:90]}")
    if args.redis:
        figures.update(redis_delivery(args, users))
    if args.json:
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
