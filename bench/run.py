"""``python -m bench.run [--quick] [--only NAME,…]``: every configuration, one run.

Pins itself and its load generators to one core and each server to the other, sets
up the benchmark database (PostgreSQL ``beacon_bench``) and its own Redis server,
runs ``scenario`` against each configuration in turn, then the database probes
(``dbprobes``: ``--phases database``, or ``watch``, ``prune``, ``publish``), then
writes the tables to ``docs/benchmarks.md``, the plot to ``docs/benchmarks.png``
and the raw figures to ``test-output/bench/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import database, dbprobes, procstat
from .configs import ALL_PHASES, CONFIGS, Config
from .scenario import Result, Scenario, Sizes, passes, sustained
from .servers import CLIENT_CORE, ROOT, Process, free_port, pin_to_clients_core, worker_pid

DOC = ROOT / "docs" / "benchmarks.md"
NICE = -10


def start_redis(log_dir: Path) -> tuple[Process, str]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no"]
    redis = Process(argv, env={}, log=log_dir / f"redis-{port}.log", core=CLIENT_CORE)
    return redis.start(port), f"redis://127.0.0.1:{port}/0"


def phase_profiler(pid: int, prefix: Path) -> Any:
    """Sample the server with py-spy during each phase: ``<prefix>.<phase>.stacks``."""

    def profile(phase: str) -> Any:
        return procstat.py_spy(pid, f"{prefix}.{phase}.stacks")

    return profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, for smoke use")
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--database-url", default=database.DEFAULT_URL)
    parser.add_argument(
        "--out",
        default="",
        help="Markdown file (default docs/benchmarks.md; --quick: test-output/bench/)",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only; write no docs")
    parser.add_argument(
        "--from-json",
        default="",
        help="only rewrite the docs from a results JSON this harness wrote earlier",
    )
    parser.add_argument("--phases", default="", help="comma-separated phases (default: all)")
    parser.add_argument(
        "--profile", action="store_true", help="run each server under py-spy (collapsed stacks)"
    )
    args = parser.parse_args(argv)
    command = "python -m bench.run" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))

    if args.from_json:
        return rewrite(Path(args.from_json), args)
    started = time.monotonic()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    sizes = Sizes.quick() if args.quick else Sizes.full()
    try:
        configs, probes = select(args.phases, args.only)
    except ValueError as exc:
        parser.error(str(exc))
    probe_sizes = dbprobes.ProbeSizes.quick() if args.quick else dbprobes.ProbeSizes.full()
    procstat.raise_nofile()
    pin_to_clients_core()
    with contextlib.suppress(PermissionError):
        # The machine is shared: run the harness and the servers (children inherit it)
        # ahead of other users' work, so that CPU time is what is measured, not queueing.
        os.nice(NICE)
    log_dir = ROOT / "test-output" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)

    users: list[database.BenchUser] = []
    if configs:
        database.create_database(args.database_url)
        env = {"DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": args.database_url}
        database.migrate({**os.environ, **env})
        database.setup_django(args.database_url)
        users = database.make_users(sizes.n1)
        print(f"bench: {len(users)} users with sessions; sizes {sizes}", flush=True)

    redis, redis_url = (None, "")
    if any(c.needs_redis for c in configs) or "publish" in probes:
        redis, redis_url = start_redis(log_dir)
    results: list[Result] = []
    probed: list[dbprobes.ProbeResult] = []
    try:
        for config in configs:
            print(f"== {config.name} ({config.label})", flush=True)
            port = free_port()
            server = Process(
                config.argv(port),
                env=config.env(args.database_url, redis_url, f"bench{port}"),
                log=log_dir / f"{config.name}.log",
            )
            result = Result(config)
            try:
                server.start(port)
                pid = worker_pid(server.pid) if config.server == "granian" else server.pid
                profiler = None
                if args.profile:
                    profiler = phase_profiler(pid, log_dir / config.name)
                def restart(server: Process = server, port: int = port, c: Any = config) -> int:
                    server.stop()
                    server.start(port)
                    return worker_pid(server.pid) if c.server == "granian" else server.pid

                result = Scenario(
                    config,
                    pid,
                    f"http://127.0.0.1:{port}",
                    port,
                    users,
                    sizes,
                    profiler=profiler,
                    restart=restart,
                ).run()
            except Exception as exc:
                traceback.print_exc()
                result.notes.append(f"failed: {type(exc).__name__}: {exc}")
            finally:
                server.stop()
                if redis is not None:
                    subprocess.run(
                        ["redis-cli", "-u", redis_url, "flushall"], capture_output=True, check=False
                    )
            results.append(result)
        for probe in probes:
            print(f"== database probe {probe}", flush=True)
            done = dbprobes.run(probe, probe_sizes, args.database_url, redis_url, log_dir)
            print(f"  {done.commands[0]}\n  {done.figures} {done.notes}", flush=True)
            probed.append(done)
            if redis is not None:
                subprocess.run(
                    ["redis-cli", "-u", redis_url, "flushall"], capture_output=True, check=False
                )
    finally:
        if redis is not None:
            redis.stop()
    elapsed = time.monotonic() - started
    out = log_dir / ("results-quick.json" if args.quick else "results.json")
    print(f"bench: figures in {out}")
    load = f"{load_before:.2f} → {os.getloadavg()[0]:.2f}"
    rows = [{"name": r.config.name, **r.figures, "notes": r.notes} for r in results]
    meta = {"command": command, "elapsed": elapsed, "load": load, "quick": args.quick}
    meta["date"] = date
    db = {p.name: p.as_json() for p in probed}
    out.write_text(json.dumps({"meta": meta, "results": rows, "database": db}, indent=1))
    write_docs(results, sizes, command, elapsed, load, args, date, probed)
    lost = sum(r.lost() for r in results if r.config.kind != "baseline")
    print(f"bench: done in {elapsed:.0f} s; messages lost outside the baseline: {lost}")
    return 0


def write_docs(
    results: list[Result],
    sizes: Sizes,
    command: str,
    elapsed: float,
    load: str,
    args: argparse.Namespace,
    date: str = "",
    probed: list[dbprobes.ProbeResult] | None = None,
) -> None:
    from . import report

    text = report.render(
        results,
        sizes=sizes,
        command=command,
        elapsed=elapsed,
        load=load,
        date=date,
        database=probed or [],
    )
    print(text)
    if not args.no_docs:
        quick_md = ROOT / "test-output" / "bench" / "benchmarks-quick.md"
        out_md = Path(args.out or (quick_md if args.quick else DOC))
        existing = out_md.read_text() if out_md.exists() else ""
        out_md.write_text(report.merge(existing, text))
        from . import plot

        plot.draw(
            results,
            out_md.with_suffix(".png"),
            sizes,
            f"{command}  ({time.strftime('%Y-%m-%d', time.gmtime())}, one server core)",
        )
        print(f"bench: wrote {out_md} and {out_md.with_suffix('.png')}")


def rewrite(path: Path, args: argparse.Namespace) -> int:
    """Render the docs again from a results file (figures unchanged, except that a
    broadcast phase with no deliveries has no CPU-per-delivery figure)."""
    data = json.loads(path.read_text())
    meta, rows = data["meta"], data["results"]
    configs = {c.name: c for c in CONFIGS}
    sizes = Sizes.quick() if meta["quick"] else Sizes.full()
    results = []
    for row in rows:
        figures = {k: v for k, v in row.items() if k not in ("name", "notes")}
        for n in (sizes.n1, sizes.n2):
            p50 = figures.get(f"bcast{n}_p50_ms")
            if p50 is not None and math.isnan(p50):
                figures[f"cpu_per_delivery{n}_us"] = math.nan
        steps = figures.get("sustained")
        if steps:  # judge the steps by the current rule
            for step in steps:
                step["pass"] = passes(step)
            figures["sustained_per_s"], figures["sustained_bound"] = sustained(steps)
        results.append(Result(configs[row["name"]], figures, row["notes"]))
    args.quick = meta["quick"]
    probed = [dbprobes.ProbeResult.from_json(k, v) for k, v in data.get("database", {}).items()]
    write_docs(
        results,
        sizes,
        meta["command"],
        meta["elapsed"],
        meta["load"],
        args,
        meta.get("date", ""),
        probed,
    )
    return 0


def select(phases: str, only: str) -> tuple[list[Config], list[str]]:
    """The configurations (each with the phases it runs) and the database probes that
    ``--phases`` and ``--only`` ask for. Server phases always include ``connect``; a
    ``--phases`` that names only probes runs no server."""
    names = {n for n in phases.split(",") if n}
    unknown = names - ALL_PHASES - set(dbprobes.PROBES) - {dbprobes.GROUP}
    if unknown:
        raise ValueError(f"unknown phases: {', '.join(sorted(unknown))}")
    wanted = {n for n in only.split(",") if n}
    missing = wanted - {c.name for c in CONFIGS}
    if missing:
        raise ValueError(f"unknown configurations: {', '.join(sorted(missing))}")
    configs = [c for c in CONFIGS if not wanted or c.name in wanted]
    if names:
        server = frozenset(names & ALL_PHASES)
        keep = server | {"connect"}
        configs = [dataclasses.replace(c, phases=c.phases & keep) for c in configs if server]
    return configs, dbprobes.selected(phases, only)


if __name__ == "__main__":
    raise SystemExit(main())
