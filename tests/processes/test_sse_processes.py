"""SSE against real server processes: SIGKILL and restart, SIGTERM, two processes on Redis.

The reader is a plain HTTP client (``tests/sseclient.HttpStream``) that does what
``EventSource`` does: on any end of the response it reconnects with the last id it
saw as ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from dataclasses import dataclass, field
from typing import Any

import pytest

from beacon import notify
from beacon.streams import user_stream

from ..servers import Server, manage, running, session_cookie
from ..sseclient import HttpStream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


@dataclass
class Follower:
    """Follows one user's stream through reconnects; ``ports`` says where to go next."""

    ports: list[int]
    path: str
    cookie: str
    seqs: list[int] = field(default_factory=list)
    closes: list[dict[str, Any]] = field(default_factory=list)
    connects: int = 0
    last_id: str | None = None
    live: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self) -> None:
        while True:
            headers = {"Cookie": f"sessionid={self.cookie}"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            try:
                stream = await HttpStream.open(self.ports[0], self.path, headers)
            except OSError:  # the server is down: what EventSource's retry does
                await asyncio.sleep(0.05)
                continue
            assert stream.status == 200, await stream.body()
            self.connects += 1
            try:
                async for event in stream.events():
                    if event.id is not None:
                        self.last_id = event.id
                    if event.event == "subscribed":
                        self.live.set()
                    elif event.event == "notification":
                        async with self.changed:
                            self.seqs.append(event.json["seq"])
                            self.changed.notify_all()
                    elif event.event == "close":
                        async with self.changed:
                            self.closes.append(event.json)
                            self.changed.notify_all()
            except (OSError, asyncio.IncompleteReadError):
                pass  # SIGKILL: the connection is cut in the middle of the body
            finally:
                await stream.close()

    async def wait_for(self, count: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: len(self.seqs) >= count)

    async def wait_closed(self, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: bool(self.closes))


@contextlib.asynccontextmanager
async def following(follower: Follower) -> Any:
    task = asyncio.ensure_future(follower.run())
    try:
        async with asyncio.timeout(20):
            await follower.live.wait()
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_reader_gets_every_event_once_in_order_across_sigkill_and_restart(
    alice: Any, db_call: Any, kind: str
) -> None:
    cookie = await db_call(session_cookie, alice)
    env = {"BEACON_LOG_POLL_SECONDS": "0.1"}  # the test process publishes: the log brings it
    server = Server(kind=kind, **env).start()
    try:
        path = f"/beacon/events/?stream={user_stream(alice)}"
        async with following(Follower([server.port], path, cookie)) as reader:
            total = 60
            for n in range(1, total + 1):
                await db_call(notify, alice, f"n{n}")
                if n == 20:
                    await reader.wait_for(10)  # the reader is mid-stream when the server dies
                    server.kill()
                if n == 35:
                    server = Server(kind=kind, port=server.port, **env).start()
                await asyncio.sleep(0.01)  # a publisher that keeps writing, not a burst
            await reader.wait_for(total)
            assert reader.seqs == list(range(1, total + 1))
            assert reader.connects >= 2
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_sigterm_ends_the_response_with_close_4012_and_the_reader_resumes(
    alice: Any, db_call: Any, kind: str
) -> None:
    cookie = await db_call(session_cookie, alice)
    env = {"BEACON_LOG_POLL_SECONDS": "0.1"}
    server = Server(kind=kind, **env).start()
    try:
        path = f"/beacon/events/?stream={user_stream(alice)}"
        async with following(Follower([server.port], path, cookie)) as reader:
            await db_call(notify, alice, "before")
            await reader.wait_for(1)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            await reader.wait_closed()
            assert await asyncio.to_thread(server.process.wait, 20) is not None
            assert reader.closes == [
                {"type": "close", "code": 4012, "reason": "server_restart", "reconnect": True}
            ]
            await db_call(notify, alice, "while down")
            server = Server(kind=kind, port=server.port, **env).start()
            await db_call(notify, alice, "after")
            await reader.wait_for(3)
            assert reader.seqs == [1, 2, 3]
    finally:
        server.stop()


@pytest.mark.redis
async def test_a_reader_resumes_on_another_process_across_redis(
    alice: Any, db_call: Any
) -> None:
    cookie = await db_call(session_cookie, alice)
    # A slow log watcher: live events can only come through Redis in time.
    env = {
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "BEACON_REDIS_PREFIX": "sse" + secrets.token_hex(4),
        "BEACON_LOG_POLL_SECONDS": "30",
    }
    with running(**env) as a, running(**env) as b:
        path = f"/beacon/events/?stream={user_stream(alice)}"
        follower = Follower([a.port], path, cookie)
        async with following(follower) as reader:
            for n in (1, 2):
                await db_call(manage, "beacon_notify", "alice", f"to A {n}", **env)
            await reader.wait_for(2)
            reader.ports[0] = b.port
            a.stop(signal.SIGKILL)  # the reader loses A and comes back on B
            await db_call(manage, "beacon_notify", "alice", "while moving", **env)
            await reader.wait_for(3)
            await db_call(manage, "beacon_notify", "alice", "on B", **env)
            await reader.wait_for(4)
            assert reader.seqs == [1, 2, 3, 4]
            assert reader.connects == 2
