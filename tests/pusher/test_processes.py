"""Pusher across two real Daphne processes on Redis: presence, triggers and client
events cross processes; a SIGKILLed process's members leave within the presence TTL;
webhooks arrive signed, and the ``pusher`` SDK's ``validate_webhook`` accepts them."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from beacon.presence import RedisPresenceStore

from ..servers import OUTPUT, Server, free_port, session_cookie
from .clients import Driver, sdk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.stack]

REDIS_URL = "redis://127.0.0.1:6379/0"
TTL = "1.5"


class Receiver:
    """A webhook receiver: every POST's key, signature and body, answered 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.cond:
                    receiver.posts.append(
                        (self.headers["X-Pusher-Key"], self.headers["X-Pusher-Signature"], body)
                    )
                    receiver.cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, validate: Any) -> list[dict[str, Any]]:
        out = []
        for key, signature, body in self.posts:
            envelope = validate(key, signature, body)
            assert envelope is not None, "validate_webhook refused a webhook"
            out.extend(envelope["events"])
        return out

    def wait_for(self, validate: Any, match: Any, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                events = self.events(validate)
                if match(events):
                    return events
                left = deadline - time.monotonic()
                assert left > 0, f"webhooks so far: {events}"
                self.cond.wait(left)


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"pusher-{uuid.uuid4().hex[:10]}"
    yield name
    store = RedisPresenceStore(REDIS_URL, name)

    async def clear() -> None:
        await store.clear()
        await store.close()

    asyncio.run(clear())


def test_two_processes_presence_kill_and_webhooks(
    prefix: str, make_user: Any, django_db_blocker: Any
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    receiver = Receiver()
    env = {
        "REDIS_URL": REDIS_URL,
        "BEACON_REDIS_PREFIX": prefix,
        "BEACON_PRESENCE_TTL_SECONDS": TTL,
        "BEACON_PUSHER_WEBHOOK_URL": receiver.url,
    }
    first, second = Server(**env), Server(**env)
    js = Driver(OUTPUT / "pusher-js-processes.log")
    validate = sdk(first.port).validate_webhook
    channel = "presence-demo.x"
    try:
        with django_db_blocker.unblock():
            first.start()
            second.start()
        js.connect("alice", first.port, cookie=session_cookie(alice))
        js.connect("bob", second.port, cookie=session_cookie(bob))
        js.call("subscribe", name="alice", channel=channel)
        joined = js.call("subscribe", name="bob", channel=channel)
        assert joined["count"] == 2
        added = js.channel_event("alice", "pusher:member_added")
        assert added["data"]["id"] == str(bob.pk)
        # A trigger sent to the second process, and a client event from it, reach the first.
        sdk(second.port).trigger(channel, "hello", {"from": "sdk"})
        assert js.channel_event("alice", "hello")["data"] == {"from": "sdk"}
        js.call("trigger", name="bob", channel=channel, event="client-wave", data={"w": 1})
        assert js.channel_event("alice", "client-wave")["data"] == {"w": 1}
        # Webhooks live in the sending process's memory: let it send before it dies.
        receiver.wait_for(validate, lambda evs: any(e["name"] == "client_event" for e in evs))
        # SIGKILL: no disconnect handler runs; bob leaves when his entry expires.
        second.kill()
        killed = time.monotonic()
        js.call("disconnect", name="bob")
        removed = js.channel_event("alice", "pusher:member_removed", timeout=15)
        assert removed["data"]["id"] == str(bob.pk)
        assert time.monotonic() - killed < 4 * float(TTL) + 2
        js.call("disconnect", name="alice")
        events = receiver.wait_for(
            validate, lambda evs: any(e["name"] == "channel_vacated" for e in evs)
        )
    finally:
        js.close()
        first.stop()
        second.stop()
        receiver.server.shutdown()
    names = [(e["name"], e.get("user_id")) for e in events if e["channel"] == channel]
    assert names[0] == ("channel_occupied", None)
    assert ("member_added", str(alice.pk)) in names and ("member_added", str(bob.pk)) in names
    assert ("member_removed", str(bob.pk)) in names and ("member_removed", str(alice.pk)) in names
    assert names[-1] == ("channel_vacated", None)
    wave = next(e for e in events if e["name"] == "client_event")
    assert wave["event"] == "client-wave" and wave["user_id"] == str(bob.pk)
    assert wave["data"] == '{"w":1}'
