"""The production stack, for real: Nginx (shipped config, HTTPS) in front of two Daphne
processes (the systemd unit's command line), a Celery worker, PostgreSQL, and a
redis-server of the test's own, all on loopback ports of their own.

The hubs' log watchers are slowed to once per 10 minutes here, so every live frame
must travel the fast path (publisher → Redis → the other process's hub) or a
resume; nothing can arrive late through the watcher and hide a lost send.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from celery import Celery
from django.conf import settings

from ..servers import RedisServer, free_port, manage, session_cookie
from ..sseclient import HttpStream
from .stack import (
    Nginx,
    UnitServer,
    Worker,
    backend_connections,
    http,
    json_lines,
    make_certificate,
    metric,
    nginx_fail_timeout,
    production_env,
    stop_all,
)

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]
    redis: RedisServer
    servers: list[UnitServer]
    worker: Worker
    nginx: Nginx
    celery: Celery

    def send_task(self, user_id: int, message: str) -> None:
        self.celery.send_task("beacon.notify", args=[user_id, message])

    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def logs(self) -> list[Path]:
        return [p for p in self.folder.rglob("*.log") if p.is_file()]

    def restart(self, server: UnitServer) -> None:
        """Start a server that was stopped (as systemd would), and wait out Nginx's
        ``fail_timeout``: until then Nginx skips it, and with the other process going
        down as well a client would get "no live upstreams" (502) — as on a real host
        (docs/deployment.md: a rolling restart waits as long between processes)."""
        server.start()
        time.sleep(nginx_fail_timeout())


@pytest.fixture(scope="module")
def stack(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack")
    (folder / "metrics").mkdir()
    redis = RedisServer(folder).start()
    https_port = free_port()
    env = production_env(
        # The sessions the test signs in with are the test process's: same key.
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        # Nginx passes ``Host: $host``, without the port: a site on a port other than
        # 443 names its origin here, for Django's CSRF check and Beacon's origin check.
        DJANGO_CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{https_port}",
        REDIS_URL=redis.url,
        BEACON_REDIS_PREFIX="stack",
        STATIC_ROOT=str(folder / "static"),
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
        BEACON_LOG_POLL_SECONDS="600",
    )
    manage("collectstatic", "--noinput", **env)
    servers = [UnitServer("beacon@.service", folder, **env) for _ in range(2)]
    worker = Worker(folder, **env)
    cert, key = make_certificate(folder)
    upstreams = [s.port for s in servers]
    nginx = Nginx(folder / "nginx", upstreams, folder / "static", cert, key, https_port=https_port)
    celery = Celery("stack-test", broker=redis.url)
    try:
        for server in servers:
            server.start()
        worker.start()
        nginx.start()
        yield Stack(folder, env, redis, servers, worker, nginx, celery)
    finally:
        celery.close()
        stop_all(nginx, worker, *servers, redis)


# -- a client, as a browser would be: through Nginx, with Origin and session cookie ----


async def connect(stack: Stack, cookie: str, query: str = "") -> Any:
    """A ``ws/notifications/`` socket through Nginx (HTTPS), signed in, from our origin."""
    return await websockets.connect(
        f"{stack.nginx.ws_base}/ws/notifications/{query}",
        ssl=stack.nginx.ssl_context(),
        origin=stack.nginx.base,
        additional_headers={"Cookie": f"sessionid={cookie}"},
    )


async def frames(ws: Any, *types: str, timeout: float = 15) -> dict[str, Any]:
    """The next frame of one of ``types`` (heartbeats and others skipped)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] in types:
            return frame


def backend_of_client(stack: Stack, before: dict[int, int]) -> int:
    """The server process Nginx proxied the newest socket to."""
    after = backend_connections(stack.ports())
    grown = [port for port in after if after[port] > before[port]]
    assert len(grown) == 1, (before, after)
    return grown[0]


def mark_read_on(port: int, cookie: str, up_to: int) -> int:
    """POST mark-read straight to one server process (as Nginx would forward it).

    ``up_to``, not ``seq``: a ``read`` event's ``{"seq": N}`` data overwrites the
    envelope's seq (reported with issue #5).
    """
    csrf = secrets.token_hex(16)  # 32 characters: a valid CSRF secret
    status, _, body = http(
        f"http://127.0.0.1:{port}/beacon/notifications/read/",
        method="POST",
        body=json.dumps({"up_to": up_to}).encode(),
        headers={
            "Content-Type": "application/json",
            "Cookie": f"sessionid={cookie}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "X-Forwarded-Proto": "https",
            "Origin": f"https://127.0.0.1:{port}",
        },
    )
    assert status == 200, body
    return int(json.loads(body)["seq"])


# -- tests ------------------------------------------------------------------------------


def test_nginx_serves_static_files_and_redirects_http_to_https(stack: Stack) -> None:
    context = stack.nginx.ssl_context()
    status, headers, body = http(f"{stack.nginx.base}/static/admin/css/base.css", context=context)
    assert status == 200 and b"body" in body
    status, headers, _ = http(f"http://127.0.0.1:{stack.nginx.http_port}/beacon/healthz")
    assert status == 301 and headers["Location"].startswith("https://")
    status, _, body = http(f"{stack.nginx.base}/beacon/healthz", context=context)
    assert status == 200 and json.loads(body)["channel_layer"] == "ok"


async def test_socket_on_one_process_gets_events_from_the_other_from_beacon_notify_and_celery(
    stack: Stack, make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    cookie = await db_call(session_cookie, alice)
    before = backend_connections(stack.ports())
    async with await connect(stack, cookie) as ws:
        assert (await frames(ws, "subscribed"))["recovered"] is True
        mine = backend_of_client(stack, before)
        other = next(p for p in stack.ports() if p != mine)

        await db_call(manage, "beacon_notify", "alice", "from the command line", **stack.env)
        first = await frames(ws, "notification")
        assert (first["seq"], first["message"]) == (1, "from the command line")

        stack.send_task(alice.pk, "from a Celery task")
        second = await frames(ws, "notification")
        assert (second["seq"], second["message"]) == (2, "from a Celery task")

        # Process B (the one this socket is not on) publishes: a read event.
        seq = await asyncio.to_thread(mark_read_on, other, cookie, 1)
        read = await frames(ws, "read", "notification")
        assert (read["type"], read["seq"], read["unread"]) == ("read", seq, 1)
        assert seq == 3


async def test_celery_worker_delivers_a_thousand_notifications_exactly_once(
    stack: Stack, make_user: Any, db_call: Any
) -> None:
    bob = await db_call(make_user, "bob")
    cookie = await db_call(session_cookie, bob)
    count = 1000
    async with await connect(stack, cookie) as ws:
        await frames(ws, "subscribed")
        sender = threading.Thread(
            target=lambda: [stack.send_task(bob.pk, f"n{i}") for i in range(count)]
        )
        sender.start()
        seqs, messages = [], []
        while len(seqs) < count:
            frame = await frames(ws, "notification", timeout=30)
            seqs.append(frame["seq"])
            messages.append(frame["message"])
        sender.join()
        assert await _silent(ws), "a frame beyond the thousand arrived"
    assert seqs == list(range(1, count + 1))  # in order, none lost, none twice
    assert sorted(messages) == sorted(f"n{i}" for i in range(count))
    worker_log = stack.worker.log_path.read_text()
    assert "Event loop is closed" not in worker_log
    assert "send failed" not in worker_log and "could not hand" not in worker_log


def _metrics_when(stack: Stack, name: str, value: float, timeout: float = 10) -> str:
    """/metrics once ``name`` reads ``value`` (a closed socket is counted a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        _, _, body = http(f"{stack.nginx.base}/metrics", context=stack.nginx.ssl_context())
        text = body.decode()
        if metric(text, name) == value or time.monotonic() > deadline:
            assert metric(text, name) == value, text
            return text
        time.sleep(0.1)


async def _silent(ws: Any, timeout: float = 0.5) -> bool:
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if frame["type"] != "ping":
                return False
    except TimeoutError:
        return True


async def test_metrics_add_up_every_process(stack: Stack, make_user: Any, db_call: Any) -> None:
    carol = await db_call(make_user, "carol")
    cookie = await db_call(session_cookie, carol)
    context = stack.nginx.ssl_context()
    # A handshake from another site: refused before a socket opens.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            f"{stack.nginx.ws_base}/ws/notifications/", ssl=context, origin="https://evil.example"
        )
    assert refused.value.response.status_code == 403
    async with await connect(stack, cookie) as ws:
        await frames(ws, "subscribed")
        await db_call(manage, "beacon_notify", "carol", "counted", **stack.env)
        await frames(ws, "notification")
        status, headers, body = await asyncio.to_thread(
            http, f"{stack.nginx.base}/metrics", context=context
        )
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert metric(text, "beacon_open_connections") >= 1
    assert metric(text, "beacon_deliveries_total") >= 1
    assert metric(text, "beacon_fanout_latency_seconds_count") >= 1
    assert metric(text, "beacon_rejected_handshakes_total", reason="origin") >= 1


async def test_sigterm_sends_clients_to_the_other_process_with_nothing_lost(
    stack: Stack, make_user: Any, db_call: Any
) -> None:
    dave = await db_call(make_user, "dave")
    cookie = await db_call(session_cookie, dave)
    count = 300
    before = backend_connections(stack.ports())
    ws = await connect(stack, cookie)
    subscribed = await frames(ws, "subscribed")
    epoch, last = subscribed["epoch"], 0
    victim = next(s for s in stack.servers if s.port == backend_of_client(stack, before))

    def publish() -> None:  # a steady stream across the restart
        for i in range(count):
            stack.send_task(dave.pk, f"s{i}")
            time.sleep(0.01)

    sender = threading.Thread(target=publish)
    sender.start()
    seqs: list[int] = []
    closes: list[int | None] = []
    try:
        while len(seqs) < count:
            try:
                frame = await frames(ws, "notification", "subscribed", timeout=30)
            except websockets.ConnectionClosed:
                closes.append(ws.close_code)
                # As the JS client does: back off a little (jitter), resume from last.
                await asyncio.sleep(0.05 + 0.1 * secrets.randbelow(10) / 10)
                ws = await connect(stack, cookie, f"?epoch={epoch}&since={last}")
                continue
            if frame["type"] == "subscribed":
                assert frame["recovered"] is True and frame["epoch"] == epoch
                continue
            seqs.append(frame["seq"])
            last = frame["seq"]
            if len(seqs) == 50:
                victim.process.terminate()  # SIGTERM, as systemctl restart does
    finally:
        sender.join()
        await ws.close()
    assert closes == [4012]
    assert seqs == list(range(1, count + 1))  # nothing lost, nothing twice
    assert victim.process.wait(30) == 0  # it exited by itself after draining
    messages = [r["message"] for r in json_lines(victim.log_path)]
    assert any(m.startswith("beacon: drained; 0 connection(s) left") for m in messages)
    # The drained process took its figures out of the live gauge.
    text = await asyncio.to_thread(_metrics_when, stack, "beacon_open_connections", 0)
    assert metric(text, "beacon_resumes_total", recovered="true") >= 1
    stack.restart(victim)  # systemd would start it again (Restart=always)


def test_logs_are_json_lines_without_message_bodies_or_session_keys(
    stack: Stack, make_user: Any
) -> None:
    # Runs last in this module: the logs hold everything the tests above did.
    user = make_user("erin")
    cookie = session_cookie(user)
    body = f"secret body {uuid.uuid4().hex}"
    stack.send_task(user.pk, body)
    manage("beacon_notify", "erin", body + " too", **stack.env)
    logs = stack.logs()
    names = {p.name for p in logs}
    assert "celery-worker.log" in names and "access.log" in names
    for server in stack.servers:
        records = json_lines(server.log_path)  # every line is JSON
        assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    # Celery prints its start-up banner (and, as root, a warning) before logging starts.
    worker_lines = stack.worker.log_path.read_text().splitlines()
    worker_records = [json.loads(line) for line in worker_lines if line.startswith("{")]
    assert any("beacon.notify" in r["message"] for r in worker_records)
    for path in logs:
        text = path.read_text(errors="replace")
        assert body not in text, path
        assert cookie not in text, path
        for earlier in ("from a Celery task", "from the command line", "counted"):
            assert earlier not in text, path


async def test_sse_through_nginx_is_unbuffered_and_resumes_on_the_other_process_after_sigterm(
    stack: Stack, make_user: Any, db_call: Any
) -> None:
    """``EventSource``'s way in: events arrive one by one through Nginx, and a SIGTERM's
    ``close`` (4012) sends the reader, with its ``Last-Event-ID``, to the other process."""
    erin = await db_call(make_user, "erin")
    cookie = await db_call(session_cookie, erin)
    path = f"/beacon/events/?stream=user:{erin.pk}"
    count = 120
    seqs: list[int] = []
    closes: list[dict[str, Any]] = []
    last_id: str | None = None
    victim: UnitServer | None = None
    sender: threading.Thread | None = None

    def publish() -> None:
        for i in range(count):
            stack.send_task(erin.pk, f"e{i}")
            time.sleep(0.01)

    connects = 0
    async with asyncio.timeout(90):
        while len(seqs) < count:
            headers = {"Cookie": f"sessionid={cookie}"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            before = backend_connections(stack.ports())
            stream = await HttpStream.open(
                stack.nginx.https_port, path, headers, ssl=stack.nginx.ssl_context()
            )
            if stream.status != 200:  # say what came instead
                answer = (stream.status, stream.headers, (await stream.body())[:300])
                raise AssertionError(f"connect {connects + 1}: {answer}")
            assert stream.headers["content-type"].startswith("text/event-stream")
            connects += 1
            if victim is None:
                port = backend_of_client(stack, before)
                victim = next(s for s in stack.servers if s.port == port)
            try:
                async for event in stream.events():
                    last_id = event.id or last_id
                    if event.event == "subscribed" and sender is None:
                        # Live events only now: each must come while the response is open.
                        sender = threading.Thread(target=publish)
                        sender.start()
                    elif event.event == "notification":
                        seqs.append(event.json["seq"])
                        if len(seqs) == 40:
                            victim.process.terminate()  # SIGTERM, as systemctl restart does
                        if len(seqs) == count:
                            break
                    elif event.event == "close":
                        closes.append(event.json)
            finally:
                await stream.close()
    assert sender is not None and victim is not None
    sender.join()
    assert [c["code"] for c in closes] == [4012]
    assert connects == 2
    assert seqs == list(range(1, count + 1))  # nothing lost, nothing twice
    assert victim.process.wait(30) == 0
    stack.restart(victim)
