"""What one idle connection holds: ``python -m bench.census beacon-uvicorn-memory``.

Starts one configuration (Beacon or baseline: it needs the bench-only
``/bench/objects`` view, so Beacon's settings), connects ``--from`` sockets, counts the
server's live Python objects by type, connects up to ``--to``, counts again, and
prints the growth per added connection (count and shallow bytes by type) next to the
RSS growth.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request

from . import database, procstat
from .configs import CONFIGS
from .scenario import Scenario, Sizes
from .servers import ROOT, Process, free_port, pin_to_clients_core


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.census", description=__doc__)
    parser.add_argument("config", choices=[c.name for c in CONFIGS if c.kind == "beacon"])
    parser.add_argument("--from", dest="start", type=int, default=1000)
    parser.add_argument("--to", dest="stop", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    procstat.raise_nofile()
    pin_to_clients_core()
    database.setup_django(database.DEFAULT_URL)
    users = database.make_users(1000)
    config = next(c for c in CONFIGS if c.name == args.config)
    port = free_port()
    log = ROOT / "test-output" / "bench" / f"census-{config.name}.log"
    server = Process(config.argv(port), env=config.env(database.DEFAULT_URL, "", "x"), log=log)
    server.start(port)
    base = f"http://127.0.0.1:{port}"
    scenario = Scenario(config, server.pid, base, port, users, Sizes.full())

    def census() -> dict[str, list[int]]:
        with urllib.request.urlopen(f"{base}/bench/objects?top=1000", timeout=60) as r:
            return json.loads(r.read())

    try:
        scenario.grow(args.start)
        time.sleep(1)
        before, rss_before = census(), procstat.rss_bytes(server.pid)
        scenario.grow(args.stop)
        time.sleep(1)
        after, rss_after = census(), procstat.rss_bytes(server.pid)
    finally:
        scenario.clients.close()
        server.stop()
    added = args.stop - args.start
    print(f"{config.label}: {(rss_after - rss_before) / added / 1024:.1f} KiB RSS per connection")
    zero = [0, 0]
    growth = {
        k: [(after.get(k, zero)[i] - before.get(k, zero)[i]) / added for i in (0, 1)]
        for k in set(before) | set(after)
    }
    tracked = sum(per_bytes for _, per_bytes in growth.values()) / 1024
    print(f"{tracked:.1f} KiB of it in objects the garbage collector tracks (shallow sizes)")
    print("objects  bytes  type (per added connection)")
    for name, (per, per_bytes) in sorted(growth.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{per:7.2f} {per_bytes:6.0f}  {name}")


if __name__ == "__main__":
    main()
