"""A Redis that stops answering (paused with SIGSTOP, sockets open, no replies) costs
latency, not minutes: live sockets keep getting events through the log watcher, and a
new subscribe (with its presence and group join) completes while Redis is paused."""

from __future__ import annotations

import secrets
import shutil
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from beacon.chat.models import Membership, Room
from beacon.streams import user_stream

from .servers import OUTPUT, RedisServer, manage, running, session_cookie
from .wsclient import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

#: Receive timeouts below: generous next to REDIS_TIMEOUT_SECONDS (1 s) and the log
#: watcher's 0.5 s poll, short next to the minute-long hangs a paused Redis caused.
WITHIN = 8.0


@pytest.fixture
def paused_redis() -> Iterator[tuple[RedisServer, Any, Any]]:
    """A redis-server of the test's own: ``(server, pause, resume)``."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(OUTPUT).start()
    assert redis.process is not None
    process = redis.process
    try:
        yield (
            redis,
            lambda: process.send_signal(signal.SIGSTOP),
            lambda: process.send_signal(signal.SIGCONT),
        )
    finally:
        process.send_signal(signal.SIGCONT)
        redis.stop()


def make_room(alice: Any, bob: Any) -> Room:
    room = Room.objects.create(name="team", is_private=True)
    for user in (alice, bob):
        Membership.objects.create(room=room, user=user)
    return room


async def test_a_paused_redis_delays_neither_live_events_nor_a_new_subscribe(
    make_user: Any, db_call: Any, paused_redis: tuple[RedisServer, Any, Any]
) -> None:
    redis, pause, resume = paused_redis
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, alice, bob)
    alice_cookie = await db_call(session_cookie, alice)
    bob_cookie = await db_call(session_cookie, bob)
    env = {
        "REDIS_URL": redis.url,
        "BEACON_REDIS_PREFIX": "t" + secrets.token_hex(4),
        "BEACON_LOG_POLL_SECONDS": "0.5",
    }
    with running(**env) as server:
        live = await WsClient.open(server, cookie=alice_cookie)
        await live.receive_type("welcome")
        await live.send({"op": "subscribe", "stream": user_stream(alice)})
        await live.receive_type("subscribed")
        await live.send({"op": "subscribe", "stream": room.stream})
        await live.receive_type("subscribed")
        await db_call(manage, "beacon_notify", "alice", "before", **env)
        assert (await live.receive_type("notification", timeout=WITHIN))["seq"] == 1

        pause()
        # bob enters the room: a group join, a presence entry and a join announcement,
        # each of which waits on Redis; his subscribe still completes.
        newcomer = await WsClient.open(server, cookie=bob_cookie)
        await newcomer.receive_type("welcome")
        await newcomer.send({"op": "subscribe", "stream": room.stream, "id": 1})
        subscribed = await newcomer.receive_type("subscribed", timeout=WITHIN)
        assert subscribed["stream"] == room.stream
        await newcomer.send({"op": "subscribe", "stream": user_stream(bob), "id": 2})
        assert (await newcomer.receive_type("subscribed", timeout=WITHIN))["ref"] == 2
        # Typing is ephemeral and goes through Redis: it may be lost, but must not
        # hold up what follows.
        await newcomer.send({"op": "typing", "stream": room.stream})
        for n in range(3):
            await db_call(manage, "beacon_notify", "alice", f"paused {n}", **env)
            frame = await live.receive_type("notification", timeout=WITHIN)
            assert (frame["message"], frame["seq"]) == (f"paused {n}", n + 2)
        await newcomer.send({"op": "ping", "id": 3})
        assert (await newcomer.receive_type("pong", timeout=WITHIN))["ref"] == 3

        resume()
        await db_call(manage, "beacon_notify", "alice", "after", **env)
        frame = await live.receive_type("notification", timeout=WITHIN)
        assert (frame["message"], frame["seq"]) == ("after", 5)
        await newcomer.close()
        await live.close()
