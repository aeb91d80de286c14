"""What ``beacon_prune`` costs over many streams: ``python -m bench.prunecost``.

Fills PostgreSQL with ``--streams`` streams of ``--events`` events each (in SQL, in
a few seconds), then runs ``eventlog.prune()`` with ``RETENTION_EVENTS=--keep`` and
prints the wall time, this process's CPU time and what was deleted (``--json``: then
the same as one JSON line, which ``python -m bench.run`` reads). Run it against
the code before a change with ``PYTHONPATH=<old worktree>/src`` and another database
name (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import time

from . import database

URL = "postgres://postgres@127.0.0.1:5432/beacon_prunecost"


def fill(streams: int, events: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE beacon_notification, beacon_event, beacon_stream RESTART IDENTITY CASCADE"
        )
        cursor.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'beacon_stream' AND column_name = 'unread'"
        )
        unread = cursor.fetchone() is not None
        cursor.execute(
            "INSERT INTO beacon_stream (name, epoch, last_seq, first_seq, created_at"
            + (", unread" if unread else "")
            + ") SELECT 'prune:' || g, 'e0', %s, 1, now()"
            + (", 0" if unread else "")
            + " FROM generate_series(1, %s) g",
            [events, streams],
        )
        cursor.execute(
            "INSERT INTO beacon_event (stream_id, seq, type, frame, created_at) "
            "SELECT s.id, k, 'tick', '{}', now() FROM beacon_stream s, generate_series(1, %s) k",
            [events],
        )
        cursor.execute("ANALYZE beacon_stream")
        cursor.execute("ANALYZE beacon_event")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prunecost", description=__doc__)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--keep", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    database.create_database(args.url)
    database.setup_django(args.url)
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test.utils import override_settings

    from beacon import eventlog
    from beacon.models import Event

    call_command("migrate", verbosity=0)
    fill(args.streams, args.events)
    connection.force_debug_cursor = True
    reset_queries()
    with override_settings(BEACON={"RETENTION_EVENTS": args.keep}):
        wall, cpu = time.perf_counter(), time.process_time()
        deleted = eventlog.prune()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    statements = len(connection.queries_log)
    connection.force_debug_cursor = False
    left = Event.objects.count()
    print(
        f"prune of {args.streams} streams x {args.events} events, keep {args.keep}: "
        f"{deleted} deleted, {left} left"
    )
    print(f"  wall {wall:.2f} s, process CPU {cpu:.2f} s, {statements} statements")
    if args.json:
        figures = {"streams": args.streams, "events": args.events, "keep": args.keep}
        figures.update(deleted=deleted, left=left, wall_s=wall, cpu_s=cpu, statements=statements)
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
