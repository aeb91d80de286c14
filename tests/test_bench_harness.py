"""The benchmark harness counts what it claims: run on a tiny N against the raw server
and the bare ASGI app (under Uvicorn), the two references without Django."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from bench import stats
from bench.clients import Clients
from bench.loadgen import SocketSpec
from bench.servers import ROOT, Process, free_port, publish
from bench.stats import Plan

SOCKETS = 6


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile(values, 100) == 100
    assert stats.percentile([3.0], 99) == 3.0


def test_user_plan_owes_each_user_its_own_ids() -> None:
    plan = Plan(kind="user", start=100, count=7, users=3)
    assert plan.ids_for(0) == {100, 103, 106}
    assert plan.ids_for(2) == {102, 105}
    assert plan.deliveries(3) == 7


def test_batched_user_plan_shares_the_batch_id() -> None:
    plan = Plan(kind="user", start=10, count=6, users=3, batch=3)
    assert plan.ids_for(0) == {10, 13}
    assert plan.ids_for(1) == {10, 13}


REFERENCE_SERVERS = {
    "raw": ["-m", "bench.rawserver", "--port", "{port}"],
    "bare-asgi": [
        *("-m", "uvicorn", "--port", "{port}"),
        *("--log-level", "warning", "bench.bareasgi:app"),
    ],
}


@pytest.fixture(scope="module", params=sorted(REFERENCE_SERVERS))
def raw(request: pytest.FixtureRequest) -> Iterator[str]:
    import os

    port = free_port()
    argv = [a.format(port=port) for a in REFERENCE_SERVERS[request.param]]
    server = Process(
        [sys.executable, *argv],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        log=ROOT / "test-output" / f"rawserver-{port}.log",
        core=None,
    ).start(port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clients(raw: str) -> Iterator[Clients]:
    pool = Clients(2)
    try:
        specs = [SocketSpec(index=j, user_index=j) for j in range(SOCKETS)]
        opened = pool.connect(f"ws://{raw}/?u={{u}}", f"http://{raw}", specs)
        assert opened == {"ok": SOCKETS, "failed": 0, "errors": []}
        yield pool
    finally:
        pool.close()


def test_broadcast_reaches_every_socket_and_nothing_is_lost(raw: str, clients: Clients) -> None:
    clients.reset()
    plan = Plan(kind="broadcast", start=1, count=5)
    publish(f"http://{raw}", plan)
    tally, latencies, _, _ = clients.collect(plan, timeout=10)
    assert (tally.expected, tally.received, tally.lost, tally.duplicates) == (30, 30, 0, 0)
    assert len(latencies) == 30


def test_a_dropped_message_is_counted_as_lost(raw: str, clients: Clients) -> None:
    clients.reset()
    plan = Plan(kind="broadcast", start=50, count=3)
    publish(f"http://{raw}", plan, drop=51)
    tally, latencies, _, _ = clients.collect(plan, timeout=1)
    assert (tally.expected, tally.lost) == (18, 1)
    assert len(latencies) == 17


def test_per_user_messages_are_counted_per_socket(raw: str, clients: Clients) -> None:
    clients.reset()
    plan = Plan(kind="user", start=200, count=20, users=SOCKETS)
    publish(f"http://{raw}", plan)
    tally, _, _, _ = clients.collect(plan, timeout=10)
    assert (tally.expected, tally.received, tally.lost) == (20, 20, 0)


# -- credentials, database probes, the report's tables (no server needed) ----------------


def test_handshake_request_puts_each_credential_where_it_belongs() -> None:
    from bench.loadgen import handshake_request

    url, headers = handshake_request("ws://h/?u={u}", SocketSpec(index=0, user_index=7))
    assert (url, headers) == ("ws://h/?u=7", None)
    spec = SocketSpec(index=0, user_index=1, cookie="abc")
    assert handshake_request("ws://h/ws/", spec) == ("ws://h/ws/", {"Cookie": "sessionid=abc"})
    spec = SocketSpec(index=0, user_index=1, ticket="t+/=")
    assert handshake_request("ws://h/ws/", spec) == ("ws://h/ws/?ticket=t%2B%2F%3D", None)
    assert handshake_request("ws://h/?u={u}", spec)[0] == "ws://h/?u=1&ticket=t%2B%2F%3D"
    spec = SocketSpec(index=0, user_index=1, token="x.y.z")
    assert handshake_request("ws://h/ws/", spec)[1] == {"Authorization": "Bearer x.y.z"}


def test_credential_specs_send_one_credential_each() -> None:
    import jwt

    from bench import credentials
    from bench.database import BenchUser

    users = [BenchUser(index=i, pk=100 + i, cookie=f"c{i}") for i in range(3)]
    session = credentials.specs("session", users, 10)
    assert [(s.index, s.user_pk, s.cookie, s.origin) for s in session] == [
        (10, 100, "c0", True),
        (11, 101, "c1", True),
        (12, 102, "c2", True),
    ]
    tickets = credentials.specs("ticket", users, 0, tickets=["a", "b", "c"])
    assert [(s.ticket, s.cookie, s.token, s.origin) for s in tickets][1] == ("b", "", "", True)
    bearer = credentials.specs("bearer", users, 0, key="k" * 40)
    assert not any(s.origin or s.cookie or s.ticket for s in bearer)
    claims = jwt.decode(bearer[2].token, "k" * 40, algorithms=["HS256"])
    assert (claims["user_id"], claims["token_type"]) == (102, "access")
    assert not any(s.cookie or s.ticket or s.token for s in credentials.specs("none", users, 0))
    with pytest.raises(ValueError):
        credentials.specs("ticket", users, 0, tickets=["a"])
    with pytest.raises(ValueError):
        credentials.specs("password", users, 0)


def test_ticket_request_is_a_csrf_checked_post_under_the_session() -> None:
    from bench.credentials import ticket_request

    request = ticket_request("http://h:1", "sess")
    assert (request.get_method(), request.full_url) == ("POST", "http://h:1/beacon/tickets/")
    cookie, token = request.get_header("Cookie"), request.get_header("X-csrftoken")
    assert cookie == f"sessionid=sess; csrftoken={token}"
    assert token is not None and len(token) == 32 and token.isalnum()


def test_probe_output_is_its_last_json_line() -> None:
    from bench.dbprobes import parse_output

    out = 'prune of 5 streams\n{"not": "last"}\n  wall 1 s\n{"wall_s": 1.5, "deleted": 3}\n'
    assert parse_output(out) == {"wall_s": 1.5, "deleted": 3}
    with pytest.raises(ValueError):
        parse_output("no figures\n[1, 2]\n")


def test_phase_selection_of_servers_and_probes() -> None:
    from bench.dbprobes import PROBES
    from bench.run import select

    configs, probes = select("", "")
    assert probes == list(PROBES) and configs and "credentials" in configs[0].phases
    configs, probes = select("", "raw,asgi-uvicorn")
    assert probes == [] and [c.name for c in configs] == ["raw", "asgi-uvicorn"]
    configs, probes = select("database", "asgi-uvicorn")
    assert (configs, probes) == ([], list(PROBES))
    configs, probes = select("prune,credentials", "beacon-uvicorn-memory")
    assert probes == ["prune"]
    assert [c.phases for c in configs] == [frozenset({"connect", "credentials"})]
    configs, _ = select("per_user", "")
    assert all(c.phases <= {"connect", "per_user"} for c in configs)
    with pytest.raises(ValueError, match="unknown phases: nope"):
        select("storm,nope", "")
    with pytest.raises(ValueError, match="unknown configurations"):
        select("", "beacon-nowhere")


def test_probe_commands_use_their_own_database_and_sizes() -> None:
    from bench.dbprobes import ProbeSizes, argv, database_url, shown

    base = "postgres://postgres@127.0.0.1:5432/beacon_bench"
    assert database_url(base, "watch") == "postgres://postgres@127.0.0.1:5432/beacon_bench_watch"
    sizes = ProbeSizes.quick()
    watch = argv("watch", sizes, base, "")
    assert watch[:4] == ["taskset", "-c", "0", "python"] and watch[-1] == "--json"
    assert watch[watch.index("--streams") + 1] == str(sizes.watch_streams)
    assert "--redis" not in argv("publish", sizes, base, "")
    publish = argv("publish", sizes, base, "redis://r:1/0")
    assert publish[publish.index("--redis") + 1] == "redis://r:1/0"
    assert " --redis 'redis://…/0' " in shown(publish)
    assert "'postgres://…/beacon_bench_prune'" in shown(argv("prune", sizes, base, ""))
    assert ProbeSizes.full().prune_streams == 100_000
    assert ProbeSizes.full().watch_streams == 20_000


def test_report_shows_credentials_storm_slow_readers_and_probes() -> None:
    from bench import report
    from bench.configs import CONFIGS
    from bench.dbprobes import ProbeResult
    from bench.scenario import Result, Sizes

    configs = {c.name: c for c in CONFIGS}
    bare = Result(configs["asgi-uvicorn"], {"hs_none_cpu_us": 500.0, "hs_none_sockets": 10})
    bare.figures.update(storm_sockets=10, storm_cpu_per_socket_us=1000.0, lost_storm=0)
    beacon = Result(configs["beacon-uvicorn-memory"])
    beacon.figures.update(hs_session_cpu_us=1500.0, hs_session_subscribe_cpu_us=1000.0)
    beacon.figures.update(hs_bearer_cpu_us=750.0, hs_bearer_subscribe_cpu_us=250.0)
    beacon.figures.update(storm_sockets=10, storm_cpu_per_socket_us=3000.0, lost_storm=2)
    beacon.figures.update(
        slow_rss_growth_mib=2.0, slow_events=1500, slow_ends={"close 4013": 20}
    )
    probes = [
        ProbeResult("prune", ["taskset -c 0 python -m bench.prunecost"], {"wall_s": 61.8}),
        ProbeResult("watch", ["w"], {}, ["exit 1: boom"]),
    ]
    text = report.render(
        [bare, beacon], sizes=Sizes.quick(), command="c", elapsed=1.0, database=probes
    )
    lines = text.splitlines()

    def row(*cells: str) -> str:
        return next(line for line in lines if all(f"| {c} |" in line for c in cells))

    assert "| 1.50 | 3.00x | 2.50 | 5.00x |" in row("beacon uvicorn memory", "session")
    assert "| 0.75 | 1.50x | 1.00 | 2.00x |" in row("beacon uvicorn memory", "bearer")
    assert "ticket" not in [line.split(" | ")[1] for line in lines if line.startswith("| beacon")]
    assert "| 3.00 | - | 3.00x | 2 |" in row("beacon uvicorn memory", "10")
    assert "close 4013: 20" in row("beacon uvicorn memory", "1,500")
    assert "61.8 s wall" in text and "`taskset -c 0 python -m bench.prunecost`" in text
    assert "| watch | no figures: exit 1: boom |" in text
    assert ProbeResult.from_json("prune", probes[0].as_json()) == probes[0]
