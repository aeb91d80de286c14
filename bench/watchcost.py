"""What the log watcher costs a server process: ``python -m bench.watchcost``.

One hub in this process subscribes ``--streams`` streams (a counting sink each; the
hub is not registered with the relay, so only its log watcher can feed it) and runs
its log watcher, with no channel layer. Then:

* **idle**: ``--seconds`` with no traffic; prints the statements this process sent
  through Django, the transactions PostgreSQL counted for the database (every
  connection, the LISTEN one too), and this process's CPU time;
* **traffic**: a publisher in another process writes ``--rate`` events/s to random
  subscribed streams for ``--seconds``; prints the same per event, and how many
  reached the sinks (0 lost is the pass mark).

``--json`` then prints the figures as one JSON line (``python -m bench.run`` reads it).

The same probe measures the code before this change: run it with
``PYTHONPATH=<old worktree>/src`` and another database name (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any

from . import database

URL = "postgres://postgres@127.0.0.1:5432/beacon_watchcost"


class Counter:
    """Counts the statements of every Django connection of this process."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with self.lock:
            self.count += 1
        return execute(sql, params, many, context)


class Sink:
    def __init__(self) -> None:
        self.seqs: set[int] = set()

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        if seq is not None:
            self.seqs.add(seq)

    async def close(self, code: Any) -> None:
        pass


def transactions(url: str) -> int:
    """Transactions PostgreSQL counted for the database (statistics flushed first)."""
    import contextlib
    from urllib.parse import urlsplit

    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0]) if row else 0


def publisher(streams: int, rate: float, seconds: float) -> None:
    """The ``--publish`` mode: another process writing to the log (to ``bench:…``
    streams: ``publish()`` refuses a namespace no app registered)."""
    from beacon import publish

    rng = random.Random(1)
    start = time.monotonic()
    sent = 0
    while time.monotonic() < start + seconds:
        publish(f"bench:watch-{rng.randrange(streams)}", "tick", {"n": sent})
        sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    print(sent, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.watchcost", description=__doc__)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--streams", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.pop("REDIS_URL", None)  # no channel layer: the watcher alone delivers
    if args.publish:
        database.setup_django(args.url)
        publisher(args.streams, args.rate, args.seconds)
        return
    database.create_database(args.url)
    database.setup_django(args.url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from beacon.models import Stream

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE beacon_notification, beacon_event, beacon_stream CASCADE")
    names = [f"bench:watch-{i}" for i in range(args.streams)]
    Stream.objects.bulk_create([Stream(name=n) for n in names], batch_size=2000)
    connection.close()
    asyncio.run(probe(args, names))


async def probe(args: argparse.Namespace, names: list[str]) -> None:
    from django.db.backends.signals import connection_created

    try:
        from beacon.fanout.hub import Hub
    except ImportError:  # the code before the fan-out package
        from beacon.hub import Hub  # type: ignore[no-redef]

    counter = Counter()

    def count_statements(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(counter)

    connection_created.connect(count_statements, weak=False)

    hub = Hub(asyncio.get_running_loop())
    sinks = {name: Sink() for name in names}
    for name, sink in sinks.items():
        await hub.add(name, sink, 0)
    watcher = asyncio.create_task(hub._watch_log())
    listening = getattr(getattr(hub, "watcher", None), "listening", None)
    if listening is not None:  # PostgreSQL: until LISTEN and the first, per-stream poll
        await asyncio.wait_for(listening.wait(), 120)
    await asyncio.sleep(3)

    def window() -> tuple[int, int, float, float]:
        return counter.count, transactions(args.url), time.process_time(), time.monotonic()

    q0, x0, c0, t0 = window()
    await asyncio.sleep(args.seconds)
    q1, x1, c1, t1 = window()
    wall = t1 - t0
    figures: dict[str, Any] = {"streams": args.streams, "idle_s": wall}
    figures["idle_statements_per_s"] = (q1 - q0) / wall
    figures["idle_xacts_per_s"] = (x1 - x0 - 1) / wall  # less this probe's own count
    figures["idle_cpu_ms_per_s"] = (c1 - c0) / wall * 1e3
    print(f"{args.streams} streams subscribed, no traffic, {wall:.1f} s:")
    print(f"  Django statements/s  {figures['idle_statements_per_s']:8.2f}")
    print(f"  PostgreSQL xacts/s   {figures['idle_xacts_per_s']:8.2f}  (all connections)")
    print(f"  process CPU          {figures['idle_cpu_ms_per_s']:8.1f} ms/s")

    env = dict(os.environ)
    command = [sys.executable, "-m", "bench.watchcost", "--publish", "--url", args.url]
    command += ["--streams", str(args.streams), "--rate", str(args.rate)]
    command += ["--seconds", str(args.seconds)]
    q0, x0, c0, t0 = window()
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=True
    )
    sent = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 15
    received = 0
    while time.monotonic() < deadline:
        received = sum(len(s.seqs) for s in sinks.values())
        if received >= sent:
            break
        await asyncio.sleep(0.1)
    q1, x1, c1, t1 = window()
    figures.update(rate_asked=args.rate, traffic_s=t1 - t0, sent=sent, received=received)
    figures["lost"] = sent - received
    figures["statements_per_event"] = (q1 - q0) / max(sent, 1)
    figures["cpu_ms_per_event"] = (c1 - c0) / max(sent, 1) * 1e3
    print(f"traffic: {sent} events at {args.rate:g}/s from another process, {t1 - t0:.1f} s:")
    print(f"  received             {received} ({sent - received} lost)")
    print(f"  Django statements    {figures['statements_per_event']:8.2f} per event")
    print(f"  process CPU          {figures['cpu_ms_per_event']:8.2f} ms per event")
    watcher.cancel()
    if args.json:
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
