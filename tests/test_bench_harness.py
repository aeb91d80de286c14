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
