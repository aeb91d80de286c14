"""The ``ws/`` and ``ws/notifications/`` consumers, through WebsocketCommunicator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from beacon import notify
from beacon.fanout import relay as transport
from beacon.fanout.hub import get_hub
from beacon.protocol import CloseCode
from beacon.streams import user_stream

from ..conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quiet_watcher(settings: Any) -> None:
    """Make the log watcher too slow to matter, so a test sees the live path alone."""
    settings.BEACON = {"LOG_POLL_SECONDS": 60}


async def test_notification_reaches_the_users_socket(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice, "/ws/notifications/") as client:
        subscribed = await client.receive_type("subscribed")
        assert subscribed["stream"] == user_stream(alice)
        assert subscribed["state"] == {"unread": 0}
        await db_call(notify, alice, "hello", url="/x/")
        frame = await client.receive_type("notification")
        assert (frame["message"], frame["url"], frame["seq"], frame["unread"]) == (
            "hello",
            "/x/",
            1,
            1,
        )


async def test_every_tab_of_the_user_gets_it_and_nobody_else(make_user: Any, db_call: Any) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    async with (
        connect(alice, "/ws/notifications/") as tab1,
        connect(alice, "/ws/notifications/") as tab2,
        connect(bob, "/ws/notifications/") as other,
    ):
        for client in (tab1, tab2, other):
            await client.receive_type("subscribed")
        await db_call(notify, alice, "for alice")
        assert (await tab1.receive_type("notification"))["message"] == "for alice"
        assert (await tab2.receive_type("notification"))["message"] == "for alice"
        assert await other.nothing()


async def test_resume_replays_missed_events_in_order(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice, "/ws/notifications/") as client:
        subscribed = await client.receive_type("subscribed")
        await db_call(notify, alice, "seen")
        seen = await client.receive_type("notification")
    for i in range(5):
        await db_call(notify, alice, f"missed {i}")
    path = f"/ws/notifications/?epoch={subscribed['epoch']}&since={seen['seq']}"
    async with connect(alice, path) as client:
        resumed = await client.receive_type("subscribed")
        assert resumed["recovered"] is True and resumed["seq"] == 6
        replayed = [await client.receive_type("notification") for _ in range(5)]
        assert [f["message"] for f in replayed] == [f"missed {i}" for i in range(5)]
        assert [f["seq"] for f in replayed] == [2, 3, 4, 5, 6]
        assert await client.nothing()
        await db_call(notify, alice, "live again")
        assert (await client.receive_type("notification"))["seq"] == 7


async def test_resume_on_the_multiplexed_socket(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    for i in range(3):
        await db_call(notify, alice, f"n{i}")
    async with connect(alice) as client:
        subscribed = await client.subscribe(user_stream(alice), since=1)
        assert subscribed["recovered"] is True
        assert [(await client.receive_type("notification"))["seq"] for _ in range(2)] == [2, 3]


async def test_resume_with_another_epoch_says_it_did_not_recover(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    await db_call(notify, alice, "n")
    async with connect(alice) as client:
        subscribed = await client.subscribe(user_stream(alice), since=1, epoch="not-it")
        assert subscribed["recovered"] is False and subscribed["reason"] == "epoch_changed"
        assert await client.nothing()


async def test_resume_past_retention_says_so(make_user: Any, db_call: Any, settings: Any) -> None:
    from beacon.eventlog import prune

    settings.BEACON = {"RETENTION_EVENTS": 2}
    alice = await db_call(make_user, "alice")
    for i in range(5):
        await db_call(notify, alice, f"n{i}")
    await db_call(prune)
    async with connect(alice) as client:
        subscribed = await client.subscribe(user_stream(alice), since=1)
        assert subscribed["recovered"] is False and subscribed["reason"] == "retention"
        assert await client.nothing()
        # Subscribing again to a stream the socket has is idempotent: start over instead.
        await client.send({"op": "unsubscribe", "stream": user_stream(alice)})
        await client.receive_type("unsubscribed")
        ok = await client.subscribe(user_stream(alice), since=3)
        assert ok["recovered"] is True
        assert [(await client.receive_type("notification"))["seq"] for _ in range(2)] == [4, 5]


async def test_a_dropped_layer_message_is_filled_from_the_log(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, quiet_watcher: None
) -> None:
    alice = await db_call(make_user, "alice")
    real_deliver = transport.deliver
    dropped: list[Any] = []

    def drop_seq_2(items: Any) -> None:
        kept = [item for item in items if item[1] != 2]
        dropped.extend(item for item in items if item[1] == 2)
        real_deliver(kept)

    monkeypatch.setattr(transport, "deliver", drop_seq_2)
    async with connect(alice, "/ws/notifications/") as client:
        await client.receive_type("subscribed")
        for i in (1, 2, 3):
            await db_call(notify, alice, f"n{i}")
        frames = [await client.receive_type("notification") for _ in range(3)]
        assert [f["message"] for f in frames] == ["n1", "n2", "n3"]
        assert len(dropped) == 1
        assert await client.nothing()


async def test_the_log_watcher_delivers_what_the_layer_never_brought(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BEACON = {"LOG_POLL_SECONDS": 0.1}
    alice = await db_call(make_user, "alice")
    monkeypatch.setattr(transport, "deliver", lambda items: None)  # the layer loses everything
    async with connect(alice, "/ws/notifications/") as client:
        await client.receive_type("subscribed")
        await db_call(notify, alice, "lost on the layer")
        frame = await client.receive_type("notification")
        assert frame["message"] == "lost on the layer"


async def test_duplicates_are_dropped(make_user: Any, db_call: Any, quiet_watcher: None) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice, "/ws/notifications/") as client:
        await client.receive_type("subscribed")
        event = await db_call(notify, alice, "once")
        await client.receive_type("notification")
        transport.deliver([(event.stream, event.seq, event.frame)] * 3)
        assert await client.nothing()


async def test_mark_read_pushes_the_unread_count_to_every_tab(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as tab1, connect(alice) as tab2:
        stream = user_stream(alice)
        await tab1.subscribe(stream)
        await tab2.subscribe(stream)
        for i in range(2):
            await db_call(notify, alice, f"n{i}")
        for tab in (tab1, tab2):
            assert (await tab.receive_type("notification"))["unread"] == 1
            assert (await tab.receive_type("notification"))["unread"] == 2
        await tab1.send({"op": "read", "stream": stream, "up_to": 2, "id": 9})
        frames = [await tab1.receive_type("ack", "read") for _ in range(2)]
        assert {f["type"] for f in frames} == {"ack", "read"}
        read = await tab2.receive_type("read")
        assert read["unread"] == 0 and read["up_to"] == 2


async def test_unsubscribe_stops_delivery(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.subscribe(user_stream(alice))
        await client.send({"op": "unsubscribe", "stream": user_stream(alice), "id": 2})
        assert (await client.receive_type("unsubscribed"))["ref"] == 2
        await db_call(notify, alice, "not for this socket any more")
        assert await client.nothing()


async def test_ping_gets_a_pong(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.send({"op": "ping", "id": "p1"})
        assert await client.receive() == {"type": "pong", "ref": "p1"}


async def test_anonymous_sockets_are_closed_with_4001() -> None:
    async with connect(AnonymousUser()) as client:
        assert await client.output() == {"type": "websocket.close", "code": 4001}


BAD_FRAMES = [
    ("{nope", "bad_json"),
    ('{"op":"ping","x":' + "[" * 40 + "]" * 40 + "}", "bad_json"),
    ('{"op":"teleport"}', "unknown_op"),
    ('{"op":"subscribe"}', "bad_frame"),
    ('{"op":"subscribe","stream":"user 1"}', "invalid_stream"),
    ('{"op":"subscribe","stream":"nosuch:1"}', "unknown_stream"),
    ('{"op":"unsubscribe","stream":"user:1"}', "not_subscribed"),
    ('{"op":"publish","stream":"user:1","type":"x","data":{},"client_id":"c"}', "forbidden"),
]


@pytest.mark.parametrize(("text", "code"), BAD_FRAMES)
async def test_bad_frames_get_an_error_frame_and_the_socket_keeps_working(
    make_user: Any, db_call: Any, text: str, code: str
) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.subscribe(user_stream(alice))
        await client.send_text(text)
        error = await client.receive_type("error")
        assert error["code"] == code
        assert "Traceback" not in json.dumps(error)
        await db_call(notify, alice, "still here")
        assert (await client.receive_type("notification"))["message"] == "still here"


async def test_the_protocol_docs_examples_of_unsupported_and_forbidden_hold(
    make_user: Any, db_call: Any
) -> None:
    """docs/protocol.md: ``typing`` on a subscribed ``user:7`` is ``unsupported``; a
    ``publish`` there is ``forbidden`` (nobody may publish to a user's stream)."""
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with connect(alice) as client:
        await client.subscribe(stream)
        await client.send({"op": "typing", "stream": stream})
        assert (await client.receive_type("error"))["code"] == "unsupported"
        await client.send(
            {"op": "publish", "stream": stream, "type": "x", "data": {}, "client_id": "c"}
        )
        assert (await client.receive_type("error"))["code"] == "forbidden"


async def test_subscribing_to_another_users_stream_is_forbidden(
    make_user: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    async with connect(alice) as client:
        error = await client.subscribe(user_stream(bob), since=0)
        assert error["type"] == "error" and error["code"] == "forbidden"
        await db_call(notify, bob, "private")
        assert await client.nothing()


async def test_marking_another_users_notifications_read_is_forbidden(
    make_user: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    await db_call(notify, bob, "private")
    async with connect(alice) as client:
        await client.send({"op": "read", "stream": user_stream(bob), "up_to": 1, "id": 1})
        error = await client.receive_type("error")
        assert (error["code"], error["ref"]) == ("forbidden", 1)


async def test_publishing_to_a_stream_without_client_publishes_is_forbidden(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.send(
            {
                "op": "publish",
                "stream": user_stream(alice),
                "type": "x",
                "data": {},
                "client_id": "c",
                "id": 5,
            }
        )
        assert (await client.receive_type("error"))["code"] == "forbidden"


async def test_frames_over_the_size_limit_close_with_4009(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.send_text('{"op":"ping","pad":"' + "x" * 70_000 + '"}')
        assert await client.output() == {
            "type": "websocket.close",
            "code": CloseCode.FRAME_TOO_LARGE,
        }


async def test_a_flood_is_closed_with_4008(make_user: Any, db_call: Any, settings: Any) -> None:
    settings.BEACON = {"RATE_LIMIT_BURST": 5, "RATE_LIMIT_PER_SECOND": 1}
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        for _ in range(6):
            await client.send({"op": "ping"})
        frames = [await client.output() for _ in range(7)]
        assert [f.get("text") and json.loads(f["text"])["type"] for f in frames[:6]] == [
            "pong",
            "pong",
            "pong",
            "pong",
            "pong",
            "error",
        ]
        assert frames[6] == {"type": "websocket.close", "code": CloseCode.RATE_LIMITED}


async def test_subscriptions_per_socket_are_limited(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    settings.BEACON = {"MAX_SUBSCRIPTIONS": 1}
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.subscribe(user_stream(alice))
        await client.send({"op": "subscribe", "stream": "user:999999"})
        assert (await client.receive_type("error"))["code"] == "too_many_subscriptions"


async def test_a_socket_that_cannot_keep_up_is_closed_with_4013(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    settings.BEACON = {"SOCKET_QUEUE_SIZE": 2, "LOG_POLL_SECONDS": 60}
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.subscribe(user_stream(alice))
        # Seq 5 shows a gap: the socket has to read the log before sending it, and
        # what the hub offers meanwhile queues behind it. The queue holds two.
        get_hub().dispatch([(user_stream(alice), seq, "{}") for seq in (5, 6, 7, 8)])
        while True:
            output = await client.output()
            if output["type"] == "websocket.close":
                assert output["code"] == CloseCode.TOO_SLOW
                break


async def test_publish_from_async_code(make_user: Any, db_call: Any) -> None:
    from beacon import anotify, apublish

    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        await client.subscribe(user_stream(alice))
        await anotify(alice, "from async code")
        assert (await client.receive_type("notification"))["message"] == "from async code"
        event = await apublish("news:1", "item", {"n": 1})
        assert event.seq == 1
