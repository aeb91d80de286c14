"""pusher-js 8 (npm, in Node, ws transport) and the ``pusher`` PyPI SDK against a real
Daphne process: connect, channels of every kind, presence, client events, cache
channels, ``toOthers``, sign-in and notify(), ping/pong, the HTTP API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pusher
import pytest

from ..servers import OUTPUT, Server, manage, session_cookie
from .clients import Driver, sdk

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with django_db_blocker.unblock():
        s = Server(
            BEACON_HEARTBEAT_SECONDS="1",
            BEACON_LOG_POLL_SECONDS="0.2",
            # Presence and the layer apart from other runs when REDIS_URL is set.
            BEACON_REDIS_PREFIX=f"pusher-{uuid.uuid4().hex[:10]}",
        )
        s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def js() -> Iterator[Driver]:
    driver = Driver(OUTPUT / "pusher-js.log")
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def cookie(make_user: Callable[[str], Any]) -> Callable[[str], tuple[Any, str]]:
    def make(username: str) -> tuple[Any, str]:
        user = make_user(username)
        return user, session_cookie(user)

    return make


def test_public_channel_gets_an_sdk_trigger(server: Server, js: Driver) -> None:
    socket_id = js.connect("a", server.port)
    assert socket_id.replace(".", "").isdigit() and socket_id.count(".") == 1
    assert js.call("subscribe", name="a", channel="orders")["subscribed"]
    sdk(server.port).trigger("orders", "shipped", {"id": 7})
    assert js.channel_event("a", "shipped")["data"] == {"id": 7}


def test_trigger_to_several_channels_and_batch(server: Server, js: Driver) -> None:
    js.connect("a", server.port)
    js.call("subscribe", name="a", channel="one")
    js.call("subscribe", name="a", channel="two")
    client = sdk(server.port)
    client.trigger(["one", "two"], "both", "plain text")
    assert js.channel_event("a", "both", channel="one")["data"] == "plain text"
    assert js.channel_event("a", "both", channel="two")["data"] == "plain text"
    batch = [
        {"channel": "one", "name": "b1", "data": {"n": 1}},
        {"channel": "two", "name": "b2", "data": "x"},
    ]
    assert client.trigger_batch(batch) == {"batch": [{}, {}]}
    assert js.channel_event("a", "b1", channel="one")["data"] == {"n": 1}
    assert js.channel_event("a", "b2", channel="two")["data"] == "x"


def test_socket_id_is_excluded_to_others(server: Server, js: Driver) -> None:
    a = js.connect("a", server.port)
    js.connect("b", server.port)
    js.call("subscribe", name="a", channel="news")
    js.call("subscribe", name="b", channel="news")
    sdk(server.port).trigger("news", "flash", {"n": 1}, socket_id=a)
    assert js.channel_event("b", "flash")["data"] == {"n": 1}
    sdk(server.port).trigger("news", "after", {})
    js.channel_event("a", "after")  # a is live, and "flash" was never sent to it
    assert js.no_event(lambda e: e.get("name") == "a" and e.get("ev") == "flash", 0.2)


def test_private_channel_needs_the_auth_endpoint(server: Server, js: Driver, cookie: Any) -> None:
    _, alice = cookie("alice")
    js.connect("anon", server.port)
    refused = js.call("subscribe", name="anon", channel="private-demo.1")
    assert refused["subscribed"] is False and "auth 403" in refused["error"]["error"]
    js.connect("alice", server.port, cookie=alice)
    assert js.call("subscribe", name="alice", channel="private-demo.1")["subscribed"]
    # The policy refuses a private channel it does not allow.
    denied = js.call("subscribe", name="alice", channel="private-secret")
    assert denied["subscribed"] is False and "auth 403" in denied["error"]["error"]
    sdk(server.port).trigger("private-demo.1", "hello", {"to": "alice"})
    assert js.channel_event("alice", "hello")["data"] == {"to": "alice"}


def test_presence_members_first_socket_in_last_out(
    server: Server, js: Driver, cookie: Any
) -> None:
    alice, a_cookie = cookie("alice")
    bob, b_cookie = cookie("bob")
    channel = "presence-demo.room"
    js.connect("alice", server.port, cookie=a_cookie)
    first = js.call("subscribe", name="alice", channel=channel)
    assert first["count"] == 1 and first["me"]["id"] == str(alice.pk)
    assert first["members"] == {str(alice.pk): {"id": alice.pk, "name": "alice"}}
    js.connect("bob1", server.port, cookie=b_cookie)
    second = js.call("subscribe", name="bob1", channel=channel)
    assert second["count"] == 2 and set(second["members"]) == {str(alice.pk), str(bob.pk)}
    added = js.channel_event("alice", "pusher:member_added")
    assert added["data"] == {"id": str(bob.pk), "info": {"id": bob.pk, "name": "bob"}}
    # Bob's second tab: no member_added; its first tab leaving: no member_removed.
    js.connect("bob2", server.port, cookie=b_cookie)
    assert js.call("subscribe", name="bob2", channel=channel)["count"] == 2
    js.call("disconnect", name="bob1")
    sdk(server.port).trigger(channel, "mark", {})
    js.channel_event("alice", "mark")
    assert js.no_event(lambda e: e.get("ev", "").startswith("pusher:member_"), 0.3)
    users = sdk(server.port).users_info(channel)["users"]
    assert sorted(u["id"] for u in users) == sorted([str(alice.pk), str(bob.pk)])
    js.call("disconnect", name="bob2")
    removed = js.channel_event("alice", "pusher:member_removed")
    assert removed["data"]["id"] == str(bob.pk)


def test_client_events(server: Server, js: Driver, cookie: Any) -> None:
    alice, a_cookie = cookie("alice")
    _, b_cookie = cookie("bob")
    js.connect("alice", server.port, cookie=a_cookie)
    js.connect("bob", server.port, cookie=b_cookie)
    for name in ("alice", "bob"):
        js.call("subscribe", name=name, channel="presence-demo.typing", bind=["client-typing"])
        js.call("subscribe", name=name, channel="private-demo.x")
    typing = {"channel": "presence-demo.typing", "event": "client-typing", "data": {"on": 1}}
    js.call("trigger", name="alice", **typing)
    got = js.wait_event(lambda e: e.get("event") == "bound" and e["name"] == "bob")
    assert got["data"] == {"on": 1} and got["metadata"] == {"user_id": str(alice.pk)}
    js.call("trigger", name="alice", channel="private-demo.x", event="client-note", data={"n": 1})
    assert "user_id" not in js.channel_event("bob", "client-note", channel="private-demo.x")
    assert js.no_event(
        lambda e: e.get("name") == "alice" and e.get("ev", "").startswith("client-"), 0.3
    )
    # Not on public channels, and not faster than the limit (10/s, burst 20, per user).
    js.call("subscribe", name="alice", channel="lobby")
    js.call("trigger", name="alice", channel="lobby", event="client-x", data={})
    error = js.wait_event(lambda e: e.get("event") == "error" and e["name"] == "alice")
    assert "private and presence" in json.dumps(error)
    for _ in range(30):
        js.call("trigger", name="alice", channel="private-demo.x", event="client-spam", data={})
    limited = js.wait_event(
        lambda e: e.get("event") == "error" and e["name"] == "alice" and "4301" in json.dumps(e)
    )
    assert limited["error"]["code"] == 4301


def test_cache_channel(server: Server, js: Driver) -> None:
    js.connect("a", server.port)
    js.call("subscribe", name="a", channel="cache-prices")
    js.channel_event("a", "pusher:cache_miss")
    sdk(server.port).trigger("cache-prices", "price", {"eur": 3})
    js.channel_event("a", "price")
    js.connect("b", server.port)
    js.call("subscribe", name="b", channel="cache-prices")
    assert js.channel_event("b", "price")["data"] == {"eur": 3}


def test_signin_and_notify_reach_server_to_user(server: Server, js: Driver, cookie: Any) -> None:
    alice, a_cookie = cookie("alice")
    js.connect("alice", server.port, cookie=a_cookie)
    user = js.call("signin", name="alice")["user"]
    assert user["id"] == str(alice.pk)
    # The user channel's subscription follows the sign-in; notify() from another process.
    sdk(server.port).send_to_user(str(alice.pk), "greeting", {"hi": 1})
    got = js.wait_event(lambda e: e.get("event") == "user" and e["ev"] == "greeting")
    assert got["data"] == {"hi": 1}
    manage("beacon_notify", "alice", "from beacon")
    got = js.wait_event(lambda e: e.get("event") == "user" and e["ev"] == "notification")
    assert got["data"]["message"] == "from beacon" and got["data"]["unread"] == 1


def test_logout_disconnects_a_signed_in_pusher_js_for_good(
    server: Server, js: Driver, cookie: Any
) -> None:
    """The session pusher-js signed in with ends: 4009, which pusher-js reads as
    refused (it disconnects and does not reconnect)."""
    from beacon.identity import end_sessions

    _, key = cookie("alice")
    js.connect("alice", server.port, cookie=key)
    js.call("signin", name="alice")
    end_sessions(session_keys=[key])
    error = js.wait_event(lambda e: e.get("event") == "error" and e["name"] == "alice")
    assert error["error"]["code"] == 4009
    js.wait_event(lambda e: e.get("event") == "state" and e["state"] == "disconnected")


def test_beacon_publish_reaches_pusher_js_and_beacon_resumes_pusher_events(
    server: Server, js: Driver, cookie: Any
) -> None:
    import asyncio

    from beacon import publish

    from ..wsclient import WsClient

    _, a_cookie = cookie("alice")
    js.connect("a", server.port)
    js.call("subscribe", name="a", channel="feed")
    sdk(server.port).trigger("feed", "via-pusher", {"n": 1})
    js.channel_event("a", "via-pusher")
    publish("pusher:feed", "via-beacon", {"n": 2})  # this process: the log watcher delivers
    assert js.channel_event("a", "via-beacon")["data"] == {"n": 2}

    async def resume() -> list[dict[str, Any]]:
        async with await WsClient.open(server, cookie=a_cookie) as ws:
            await ws.send({"op": "subscribe", "stream": "pusher:feed", "since": 0})
            await ws.receive_type("subscribed")
            return [await ws.receive_type("via-pusher"), await ws.receive_type("via-beacon")]

    replayed = asyncio.run(resume())
    assert replayed[0]["event"] == "via-pusher" and json.loads(replayed[0]["data"]) == {"n": 1}
    assert replayed[0]["channel"] == "feed" and [e["seq"] for e in replayed] == [1, 2]


def test_pings_both_ways(server: Server, js: Driver) -> None:
    js.connect("a", server.port, activityTimeout=500)
    js.wait_event(lambda e: e.get("event") == "pusher:pong")  # answered its own ping
    js.wait_event(lambda e: e.get("event") == "pusher:ping")  # the server's heartbeat
    assert js.call("state", name="a")["state"] == "connected"


def test_http_api(server: Server, js: Driver, cookie: Any) -> None:
    alice, a_cookie = cookie("alice")
    js.connect("alice", server.port, cookie=a_cookie)
    js.call("subscribe", name="alice", channel="presence-demo.api")
    js.call("subscribe", name="alice", channel="api-public")
    client = sdk(server.port)
    listed = client.channels_info()["channels"]
    assert {"presence-demo.api", "api-public"} <= set(listed)
    presence = client.channels_info("presence-", ["user_count"])["channels"]
    assert presence["presence-demo.api"] == {"user_count": 1}
    assert client.channel_info("api-public") == {"occupied": True}
    assert client.channel_info("nobody-here") == {"occupied": False}
    assert client.channel_info("presence-demo.api", ["user_count"]) == {
        "occupied": True,
        "user_count": 1,
    }
    assert client.users_info("presence-demo.api") == {"users": [{"id": str(alice.pk)}]}
    with pytest.raises(pusher.errors.PusherBadRequest):
        client.users_info("api-public")
    assert client.terminate_user_connections(str(alice.pk)) == {}  # not signed in: stays
    js.call("signin", name="alice")
    client.terminate_user_connections(str(alice.pk))
    js.wait_event(lambda e: e.get("event") == "state" and e["state"] != "connected")


def test_bad_signature_and_bad_requests(server: Server) -> None:
    local = {"host": "127.0.0.1", "port": server.port, "ssl": False}
    wrong = pusher.Pusher(app_id="100001", key="demo-key", secret="wrong", **local)
    with pytest.raises(pusher.errors.PusherBadAuth):
        wrong.trigger("x", "y", {})
    unknown = pusher.Pusher(app_id="100001", key="nope", secret="demo-secret", **local)
    with pytest.raises(pusher.errors.PusherBadAuth):
        unknown.channels_info()
    other_app = pusher.Pusher(app_id="999", key="demo-key", secret="demo-secret", **local)
    with pytest.raises(pusher.errors.PusherBadAuth):
        other_app.trigger("x", "y", {})
    # The SDK will not send to an encrypted channel without a master key; sign by hand.
    import time
    import urllib.error
    import urllib.request

    from beacon.pusher.signing import sign_request

    body = json.dumps({"name": "y", "channels": ["private-encrypted-x"], "data": "{}"}).encode()
    path = "/apps/100001/events"
    params = sign_request("demo-key", "demo-secret", "POST", path, {}, body, time.time())
    query = "&".join(f"{k}={v}" for k, v in params.items())
    request = urllib.request.Request(f"{server.url}{path}?{query}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and b"Encrypted" in info.value.read()
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        sdk(server.port).trigger("x", "y", "z" * 11_000)
