"""What one durable notification costs the publisher: ``python -m bench.publishcost``.

Runs ``notify()`` and ``notify_many()`` against the benchmark database in this
process (no server, no sockets) and prints wall and CPU time per notification and
the SQL statements of one ``notify()``. Pin it like a server for comparable figures:
``taskset -c 0 python -m bench.publishcost``.
"""

from __future__ import annotations

import argparse
import time

from . import database


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publishcost", description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--url", default=database.DEFAULT_URL, help="PostgreSQL database")
    args = parser.parse_args()
    database.create_database(args.url)
    database.setup_django(args.url)
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import beacon

    call_command("migrate", verbosity=0)
    users = [u.pk for u in database.make_users(args.users)]

    def timed(label: str, calls: int, per_call: int, fn: object) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(calls):
            fn(k)  # type: ignore[operator]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = calls * per_call
        print(f"{label}: {wall / n * 1e3:.2f} ms wall, {cpu / n * 1e3:.2f} ms CPU per notification")

    timed("notify()", args.count, 1, lambda k: beacon.notify(users[k % len(users)], "x", i=k))
    batches = max(1, args.count // len(users))
    timed("notify_many()", batches, len(users), lambda k: beacon.notify_many(users, "x", i=k))
    with CaptureQueriesContext(connection) as queries:
        beacon.notify(users[0], "x", i=0)
    print(f"one notify(): {len(queries.captured_queries)} statements")
    for q in queries.captured_queries:
        print("   ", q["sql"][:110])


if __name__ == "__main__":
    main()
