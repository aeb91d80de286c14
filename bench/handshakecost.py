"""Where a handshake's and a subscribe's server CPU goes: ``python -m bench.handshakecost``.

Starts one server of ``bench.configs`` (by default Beacon on Uvicorn with the
in-memory layer, and the bare ASGI app on the same server) pinned to one core,
connects ``--sockets`` session-authenticated sockets from load generators on the
other core, then subscribes each to ``bench:all`` and ``user:{id}`` (new streams: the
beacon tables are emptied before each configuration), and prints the
server's CPU per handshake and per subscribe, split by thread: the event loop's
thread against the database threads (``beacon.db``). The split comes from
``/proc/<pid>/task``; ``--profile DIR`` also samples the server with ``py-spy --gil``
(only the thread holding the GIL: CPU, not waiting) during each of the two steps and
writes collapsed stacks there.

The harness (``bench.run --phases connect``) measures the same handshake; this probe
exists to say where its CPU goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

from . import database, procstat
from .clients import Clients
from .configs import CONFIGS
from .loadgen import SocketSpec
from .servers import ROOT, Process, free_port, pin_to_clients_core


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of ``pid``'s main thread and of all its others."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            # Python 3.11 names no OS thread: the others are the database threads.
            name = "event loop" if tid == str(pid) else "other threads"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def sampled(pid: int, out: Path | None) -> Any:
    """py-spy's GIL-holder stacks while the block runs (nothing without ``out``)."""
    if out is None:
        return contextlib.nullcontext()
    return procstat.py_spy(pid, out, rate=250, gil=True)


def measure(config: Any, args: argparse.Namespace, users: list[Any]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:  # every configuration subscribes to new streams
        cursor.execute(
            "TRUNCATE beacon_notification, beacon_event, beacon_stream RESTART IDENTITY CASCADE"
        )
    port = free_port()
    log = ROOT / "test-output" / "bench" / f"handshakecost-{config.name}.log"
    server = Process(config.argv(port), env=config.env(args.url, "", f"hs{port}"), log=log)
    server.start(port)
    clients = Clients(4)
    try:
        beacon = config.kind == "beacon"
        specs = [
            SocketSpec(
                index=j,
                user_index=j % len(users),
                user_pk=users[j % len(users)].pk,
                cookie=users[j % len(users)].cookie if beacon else "",
            )
            for j in range(args.warm + args.sockets)
        ]
        url, origin = config.ws_url(port), f"http://127.0.0.1:{port}"
        clients.connect(url, origin, specs[: args.warm], welcome=beacon)  # imports, pools
        steps = [("handshake", args.sockets)]
        before, meter = thread_cpu(server.pid), procstat.CpuMeter([server.pid])
        with sampled(server.pid, args.profile and args.profile / f"{config.name}.handshake"):
            opened = clients.connect(url, origin, specs[args.warm :], welcome=beacon)
        spent = [(thread_cpu(server.pid), meter.read()[0], opened["ok"])]
        if beacon:
            steps.append(("subscribe", 2 * args.sockets))
            meter = procstat.CpuMeter([server.pid])
            with sampled(server.pid, args.profile and args.profile / f"{config.name}.subscribe"):
                sub = clients.subscribe(["bench:all"], user_stream=True)
            spent.append((thread_cpu(server.pid), meter.read()[0], 2 * sub["ok"]))
        for (step, _), (after, total, count) in zip(steps, spent, strict=True):
            split = ", ".join(
                f"{name} {(after[name] - before.get(name, 0.0)) / max(count, 1) * 1e6:.0f}"
                for name in sorted(after)
                if after[name] - before.get(name, 0.0) > 0
            )
            print(
                f"{config.name}: {step} {total / max(count, 1) * 1e6:.0f} us CPU each "
                f"({count} done; by thread, us: {split})",
                flush=True,
            )
            before = after
    finally:
        clients.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.handshakecost", description=__doc__)
    parser.add_argument("--url", default=database.DEFAULT_URL, help="PostgreSQL database")
    parser.add_argument("--only", default="asgi-uvicorn,beacon-uvicorn-memory")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--profile", type=Path, help="write py-spy --gil stacks to this folder")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    procstat.raise_nofile()
    pin_to_clients_core()  # and its load generators; the server goes to the other core
    database.create_database(args.url)
    env = {"DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": args.url}
    database.migrate({**os.environ, **env})
    database.setup_django(args.url)
    users = database.make_users(args.sockets + args.warm)
    by_name = {c.name: c for c in CONFIGS}
    for name in args.only.split(","):
        measure(by_name[name], args, users)


if __name__ == "__main__":
    main()
