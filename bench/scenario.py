"""The measurements, run against one configuration's server process.

Order (one server process, one set of load generators):

1. ``warm`` sockets connect (and subscribe), then the rest up to ``n1``: connect rate
   and server CPU per handshake (Beacon: session auth + origin check + ``welcome``);
   server CPU per subscribe, separately.
2. Broadcasts to ``n1`` sockets, one at a time: per-delivery latency.
3. Sustained broadcast at rising offered loads (deliveries/s): achieved rate, p99,
   lost; stops after the first load that misses p99 <= 500 ms, loses anything or
   achieves less than 90% of what was offered. The sustained figure is the highest
   offered load that passed.
4. Per-user messages to ``n1`` users, each on its own stream/group, as fast as the
   publisher goes (Beacon: ``notify()`` per message, then ``notify_many`` batches).
5. Handshakes by credential (``credentials``): up to ``n1`` more sockets with the
   session cookie, then a one-time ticket, then a bearer token (each set opened,
   subscribed to its user stream, closed): server CPU per handshake and per subscribe.
   The raw server and the bare ASGI app: the same without a credential.
6. Sockets up to ``n2``: RSS per idle connection from the growth of the server's RSS.
7. Reconnect storm (``storm``): the ``n2`` sockets, subscribed with some history, see
   their server restarted; every one reconnects at once (jittered backoff) and resumes
   from its last seq. Time from the new process listening until the last is live, that
   process's CPU, and loss over events published during and after the storm.
8. Clients that stop reading (``slow``, ``slowreaders``).
9. Broadcasts to ``n2`` sockets.

Each phase is bounded in count and time; a timeout shows up as lost messages.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from . import procstat
from .clients import Clients
from .configs import Config
from .database import BenchUser
from .loadgen import SocketSpec
from .servers import publish
from .stats import Plan, percentile, rate

P99_LIMIT = 0.5
#: A sustained step must deliver at least this share of its offered rate.
KEPT_UP = 0.9


@dataclass(frozen=True)
class Sizes:
    warm: int
    n1: int
    n2: int
    rounds: int
    round_budget: float
    levels: tuple[int, ...]
    step_seconds: float
    drain_seconds: float
    per_user_single: int
    per_user_batch: int
    batch: int
    processes: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            warm=50,
            n1=1000,
            n2=5000,
            rounds=5,
            round_budget=20.0,
            levels=(2_500, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000),
            step_seconds=2.0,
            drain_seconds=3.0,
            per_user_single=500,
            per_user_batch=1000,
            batch=100,
            processes=4,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            warm=10,
            n1=100,
            n2=300,
            rounds=3,
            round_budget=5.0,
            levels=(2_000, 5_000),
            step_seconds=1.0,
            drain_seconds=2.0,
            per_user_single=100,
            per_user_batch=200,
            batch=50,
            processes=2,
        )


@dataclass
class Result:
    config: Config
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lost(self) -> int:
        return sum(v for k, v in self.figures.items() if k.startswith("lost_"))


class Scenario:
    def __init__(
        self,
        config: Config,
        server_pid: int,
        base_url: str,
        port: int,
        users: list[BenchUser],
        sizes: Sizes,
        log: Any = print,
        profiler: Any = None,
        restart: Any = None,
    ) -> None:
        self.config = config
        self.pid = server_pid
        self.base = base_url
        self.port = port
        self.users = users
        self.sizes = sizes
        self.log = log
        #: ``profiler(phase)`` returns a context manager that samples the server meanwhile.
        self.profiler = profiler
        #: ``restart()`` stops the server, starts it again on the same port: new pid.
        self.restart = restart
        self.next_id = 1
        self.result = Result(config)
        self.clients = Clients(sizes.processes)
        self.connected = 0

    # -- helpers ------------------------------------------------------------------------

    def ids(self, count: int) -> int:
        start = self.next_id
        self.next_id += count
        return start

    def specs(self, start: int, stop: int) -> list[SocketSpec]:
        n = len(self.users)
        return [
            SocketSpec(
                index=j,
                user_index=j % n,
                user_pk=self.users[j % n].pk,
                cookie=self.users[j % n].cookie if self.config.kind not in ("raw", "asgi") else "",
            )
            for j in range(start, stop)
        ]

    def grow(self, to: int) -> dict[str, float]:
        """Connect sockets up to ``to`` (Beacon: then subscribe them); CPU and rates."""
        specs = self.specs(self.connected, to)
        if not specs:
            return {}
        cpu = procstat.CpuMeter([self.pid])
        opened = self.clients.connect(
            self.config.ws_url(self.port),
            f"http://127.0.0.1:{self.port}",
            specs,
            welcome=self.config.kind == "beacon",
        )
        used, wall = cpu.read()
        if opened["failed"]:
            self.result.notes.append(f"{opened['failed']} connects failed: {opened['errors']}")
        self.connected += opened["ok"]
        out = {
            "handshakes": opened["ok"],
            "handshake_cpu_us": used / max(1, opened["ok"]) * 1e6,
            "connects_per_s": rate(opened["ok"], wall),
        }
        if self.config.kind == "beacon":
            cpu = procstat.CpuMeter([self.pid])
            # Only sockets below n1 take part in per-user runs: only they need user:{id}.
            sub = self.clients.subscribe(["bench:all"], user_stream=to <= self.sizes.n1)
            used, _ = cpu.read()
            per_socket = 2 if to <= self.sizes.n1 else 1
            out["subscribe_cpu_us"] = used / max(1, sub["ok"] * per_socket) * 1e6
            if sub["failed"]:
                self.result.notes.append(f"{sub['failed']} subscribes failed")
        return out

    # -- phases -------------------------------------------------------------------------

    def connect_phase(self) -> None:
        s = self.sizes
        self.grow(s.warm)
        time.sleep(0.5)
        grown = self.grow(s.n1)
        f = self.result.figures
        f["handshake_cpu_us"] = grown["handshake_cpu_us"]
        f["connects_per_s"] = grown["connects_per_s"]
        if "subscribe_cpu_us" in grown:
            f["subscribe_cpu_us"] = grown["subscribe_cpu_us"]
        self.log(
            f"  connect: {grown['handshakes']} handshakes, {f['connects_per_s']:.0f}/s, "
            f"{f['handshake_cpu_us']:.0f} us CPU each"
        )

    def broadcast_phase(self, n: int) -> None:
        s = self.sizes
        if self.connected < n:
            self.grow(n)  # the rss phase did not run: connect the rest first
        latencies: list[float] = []
        lost = received = rounds = 0
        cpu = procstat.CpuMeter([self.pid])
        budget = time.monotonic() + s.round_budget
        while rounds < s.rounds and time.monotonic() < budget:
            self.clients.reset()
            plan = Plan(kind="broadcast", start=self.ids(1), count=1)
            publish(self.base, plan)
            tally, lat, _, _ = self.clients.collect(plan, timeout=max(5.0, s.round_budget))
            latencies += lat
            lost += tally.lost
            received += tally.received
            rounds += 1
            time.sleep(0.1)
        used, _ = cpu.read()
        f = self.result.figures
        f[f"bcast{n}_p50_ms"] = percentile(latencies, 50) * 1e3
        f[f"bcast{n}_p99_ms"] = percentile(latencies, 99) * 1e3
        f[f"bcast{n}_max_ms"] = max(latencies, default=math.nan) * 1e3
        f[f"bcast{n}_rounds"] = rounds
        f[f"lost_bcast{n}"] = lost
        f[f"cpu_per_delivery{n}_us"] = used / received * 1e6 if received else math.nan
        self.log(
            f"  broadcast to {n}: {rounds} rounds, p50 {f[f'bcast{n}_p50_ms']:.1f} ms, "
            f"p99 {f[f'bcast{n}_p99_ms']:.1f} ms, max {f[f'bcast{n}_max_ms']:.1f} ms, "
            f"{f[f'cpu_per_delivery{n}_us']:.1f} us CPU/delivery, lost {lost}"
        )

    def sustained_phase(self) -> None:
        s, n = self.sizes, self.connected
        steps = []
        for level in s.levels:
            per_s = level / n
            count = max(1, round(per_s * s.step_seconds))
            plan = Plan(kind="broadcast", start=self.ids(count), count=count)
            self.clients.reset()
            meter = procstat.CpuMeter([self.pid])
            clients_meter = procstat.CpuMeter(self.clients.pids)
            t0 = time.time()
            publish(self.base, plan, rate=per_s)
            tally, lat, last, _ = self.clients.collect(plan, timeout=s.drain_seconds)
            server_cpu, wall = meter.read()
            client_cpu, _ = clients_meter.read()
            p99 = percentile(lat, 99)
            step = {
                "offered": level,
                "achieved": rate(tally.received, (last or time.time()) - t0),
                "p99_ms": p99 * 1e3,
                "lost": tally.lost,
                "seq_errors": tally.seq_errors,
                "server_util": server_cpu / wall,
                "client_util": client_cpu / wall,
                "cpu_per_delivery_us": server_cpu / max(1, tally.received) * 1e6,
            }
            step["pass"] = passes(step)
            steps.append(step)
            self.log(
                f"  sustained {level}/s offered: {step['achieved']:.0f}/s, p99 "
                f"{step['p99_ms']:.0f} ms, lost {tally.lost}, server {step['server_util']:.0%}"
                f" client core {step['client_util']:.0%}"
            )
            if not step["pass"]:
                time.sleep(1.0)  # let the backlog drain before the next phase
                break
        f = self.result.figures
        f["sustained"] = steps
        f["sustained_per_s"], f["sustained_bound"] = sustained(steps)
        f["seq_errors"] = f.get("seq_errors", 0) + sum(x["seq_errors"] for x in steps)

    def per_user_phase(self) -> None:
        s = self.sizes
        users = min(len(self.users), self.connected)
        runs = [("single", s.per_user_single, 1)]
        if self.config.kind == "beacon":
            runs.append(("batch", s.per_user_batch, s.batch))
        f = self.result.figures
        for name, count, batch in runs:
            plan = Plan(kind="user", start=self.ids(count), count=count, users=users, batch=batch)
            self.clients.reset()
            meter = procstat.CpuMeter([self.pid])
            t0 = time.time()
            answer = publish(self.base, plan, timeout=300)
            tally, _, last, _ = self.clients.collect(plan, timeout=15)
            used, _ = meter.read()
            written = rate(count, answer["elapsed"])
            delivered = rate(tally.received, (last or time.time()) - t0)
            f[f"per_user_{name}_written_per_s"] = written
            f[f"per_user_{name}_per_s"] = delivered
            f[f"lost_per_user_{name}"] = tally.lost
            f[f"per_user_{name}_cpu_us"] = used / max(1, tally.received) * 1e6
            f["seq_errors"] = f.get("seq_errors", 0) + tally.seq_errors
            self.log(
                f"  per-user {name} ({count} to {users} users, batch {batch}): written "
                f"{written:.0f}/s, delivered {delivered:.0f}/s, lost {tally.lost} of "
                f"{tally.expected}, dup {tally.duplicates}, seq errors {tally.seq_errors}"
            )

    def rss_phase(self) -> None:
        time.sleep(0.5)
        before, at = procstat.rss_bytes(self.pid), self.connected
        grown = self.grow(self.sizes.n2)
        time.sleep(1.0)
        after = procstat.rss_bytes(self.pid)
        added = self.connected - at
        f = self.result.figures
        f["rss_per_conn_kib"] = (after - before) / max(1, added) / 1024
        f["rss_total_mib"] = after / 2**20
        self.log(
            f"  {added} more sockets ({grown.get('connects_per_s', 0):.0f}/s): RSS "
            f"{f['rss_per_conn_kib']:.1f} KiB per idle connection, {f['rss_total_mib']:.0f} MiB"
        )

    def credentials_phase(self) -> None:
        """Server CPU per handshake by credential (``credentials``), then per subscribe.

        Beacon: one socket per user (up to ``n1``) with the session cookie, then with a
        one-time ticket (all made before the measured window, see
        ``credentials.issue_tickets``: asking for one is not handshake CPU), then with a
        bearer token; each set in load generators of its own, after a few warm-up
        sockets, measured from the first connect to the last ``welcome``, then
        subscribed to its ``user:{id}`` and closed. The references (raw, bare ASGI)
        take no credential.
        """
        from . import credentials

        beacon = self.config.kind == "beacon"
        kinds = credentials.BEACON_CREDENTIALS if beacon else ("none",)
        users = self.users[: min(self.sizes.n1, len(self.users))]
        warm = users[: max(1, min(5, len(users) // 10))]
        key = ""
        if beacon:
            from django.conf import settings

            key = settings.SECRET_KEY
        pool = Clients(self.sizes.processes)  # its sockets are closed after each set
        try:
            for kind in kinds:
                try:
                    self.credential_set(pool, kind, warm, users, key)
                except Exception as exc:
                    self.result.notes.append(f"{kind}: failed: {type(exc).__name__}: {exc}")
                    self.log(f"  {kind}: failed: {type(exc).__name__}: {exc}")
                finally:
                    pool.drop()
                time.sleep(0.5)  # the closes are handled before the next set is measured
        finally:
            pool.close()

    def credential_set(
        self, pool: Clients, kind: str, warm: list[BenchUser], users: list[BenchUser], key: str
    ) -> None:
        from . import credentials

        beacon = self.config.kind == "beacon"
        f = self.result.figures
        warm_tickets = tickets = None
        if kind == "ticket":  # beforehand: asking for a ticket is no handshake
            warm_tickets = credentials.fetch_tickets(self.base, [u.cookie for u in warm])
            tickets = credentials.issue_tickets(users)
        warm_specs = credentials.specs(kind, warm, 0, tickets=warm_tickets, key=key)
        specs = credentials.specs(kind, users, len(warm), tickets=tickets, key=key)
        url, origin = self.config.ws_url(self.port), f"http://127.0.0.1:{self.port}"
        pool.connect(url, origin, warm_specs, welcome=beacon)
        cpu = procstat.CpuMeter([self.pid])
        opened = pool.connect(url, origin, specs, welcome=beacon)
        used, wall = cpu.read()
        f[f"hs_{kind}_cpu_us"] = used / max(1, opened["ok"]) * 1e6
        f[f"hs_{kind}_per_s"] = rate(opened["ok"], wall)
        f[f"hs_{kind}_sockets"] = opened["ok"]
        if opened["failed"]:
            self.result.notes.append(
                f"{kind}: {opened['failed']} handshakes failed: {opened['errors']}"
            )
        line = (
            f"  {kind}: {opened['ok']} handshakes, {f[f'hs_{kind}_cpu_us']:.0f} us CPU"
            f" each, {f[f'hs_{kind}_per_s']:.0f}/s"
        )
        if beacon:  # every socket of the set (the warm-up ones too) subscribes once
            cpu = procstat.CpuMeter([self.pid])
            sub = pool.subscribe([], user_stream=True)
            used, _ = cpu.read()
            f[f"hs_{kind}_subscribe_cpu_us"] = used / max(1, sub["ok"]) * 1e6
            line += f"; subscribe {f[f'hs_{kind}_subscribe_cpu_us']:.0f} us"
            if sub["failed"]:
                self.result.notes.append(f"{kind}: {sub['failed']} subscribes failed")
        self.log(line)

    def storm_phase(self) -> None:
        s = self.sizes
        if self.restart is None:
            return
        if self.connected < s.n2:
            self.grow(s.n2)
        beacon = self.config.kind == "beacon"
        if beacon:  # some history on every stream before the restart
            history = Plan(kind="broadcast", start=self.ids(3), count=3)
            self.clients.reset()
            publish(self.base, history)
            self.clients.collect(history, timeout=10)
        origin = f"http://127.0.0.1:{self.port}"
        self.clients.reset()
        self.clients.storm_start(self.config.ws_url(self.port), origin, resume=beacon, jitter=1.0)
        self.pid = self.restart()
        listening = time.time()
        cpu = procstat.CpuMeter([self.pid])
        during = Plan(kind="broadcast", start=self.ids(3), count=3)
        if beacon:  # into the log while the clients come back: resumed, not live
            publish(self.base, during)
        storm = self.clients.storm_end()
        used, _ = cpu.read()
        after = Plan(kind="broadcast", start=self.ids(1), count=1)
        publish(self.base, after)
        owed = Plan(kind="broadcast", start=during.start, count=4) if beacon else after
        tally, _, _, _ = self.clients.collect(owed, timeout=20)
        f = self.result.figures
        f["storm_sockets"] = storm["ok"]
        f["storm_live_s"] = storm["last_live"] - listening
        f["storm_cpu_s"] = used
        f["storm_cpu_per_socket_us"] = used / max(1, storm["ok"]) * 1e6
        f["lost_storm"] = tally.lost
        f["seq_errors"] = f.get("seq_errors", 0) + tally.seq_errors
        if storm["failed"]:
            self.result.notes.append(f"storm: {storm['failed']} failed: {storm['errors']}")
        self.log(
            f"  storm: {storm['ok']} of {self.connected} back, last live "
            f"{f['storm_live_s']:.1f} s after the restart, {used:.1f} s server CPU, "
            f"lost {tally.lost} of {tally.expected}, seq errors {tally.seq_errors}"
        )

    def slow_phase(self) -> None:
        """Clients that stop reading (``slowreaders``): RSS growth, how they ended."""
        if self.config.kind != "beacon":
            return
        from . import slowreaders

        cookies = [u.cookie for u in self.users]
        path = self.config.ws_url(self.port).split(str(self.port), 1)[1]
        count = slowreaders.COUNT if self.sizes.n1 >= 1000 else 400  # --quick: 1.6 MB each
        out = slowreaders.run(self.pid, self.base, self.port, path, cookies, count)
        self.result.figures.update(out, slow_events=count)
        self.log(
            f"  {slowreaders.SOCKETS} clients that stop reading, owed {count} x "
            f"{slowreaders.SIZE} B each: RSS +{out['slow_rss_growth_mib']:.1f} MiB, kernel TCP "
            f"+{out['slow_kernel_growth_mib']:.1f} MiB; "
            f"ended: {out['slow_ends']}"
        )

    def run(self) -> Result:
        phases = self.config.phases
        s = self.sizes
        plan: list[tuple[str, Any]] = [("connect", self.connect_phase)]
        if "broadcast" in phases:
            plan.append((f"broadcast{s.n1}", lambda: self.broadcast_phase(s.n1)))
        if "sustained" in phases:
            plan.append(("sustained", self.sustained_phase))
        if "per_user" in phases:
            plan.append(("per_user", self.per_user_phase))
        if "credentials" in phases and self.config.kind != "baseline":
            plan.append(("credentials", self.credentials_phase))
        if "rss" in phases:
            plan.append(("rss", self.rss_phase))
        if "storm" in phases:
            plan.append(("storm", self.storm_phase))
        if "slow" in phases:
            plan.append(("slow", self.slow_phase))
        if "broadcast" in phases:
            plan.append((f"broadcast{s.n2}", lambda: self.broadcast_phase(s.n2)))
        try:
            for name, phase in plan:
                if self.profiler is None:
                    phase()
                else:
                    with self.profiler(name):
                        phase()
        finally:
            self.clients.close()
        return self.result


def passes(step: dict[str, Any]) -> bool:
    """A sustained step passes: nothing lost, p99 in time, and it kept up (>= 90%)."""
    return (
        step["lost"] == 0
        and step["p99_ms"] <= P99_LIMIT * 1000
        and step["achieved"] >= KEPT_UP * step["offered"]
    )


def sustained(steps: list[dict[str, Any]]) -> tuple[float, str]:
    """The highest offered load that passed, and what stopped the next one."""
    best = max((x["offered"] for x in steps if x["pass"]), default=0.0)
    return best, bound(steps)


def bound(steps: list[dict[str, Any]]) -> str:
    """Where the sustained run stopped: the busiest core at the first failing step."""
    failed = [x for x in steps if not x["pass"]]
    if not failed:
        top = steps[-1] if steps else None
        return "not reached (highest offered load passed)" if top else "-"
    x = failed[0]
    if x["server_util"] >= 0.9:
        return f"server CPU ({x['server_util']:.0%} of its core)"
    if x["client_util"] >= 0.9:
        return f"load generators ({x['client_util']:.0%} of their core)"
    return f"neither core saturated (server {x['server_util']:.0%}, clients {x['client_util']:.0%})"
