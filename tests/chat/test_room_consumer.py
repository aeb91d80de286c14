"""Chat over the ``ws/`` socket: authorization, messages, resend, typing, read state."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from beacon.chat.models import Membership, Room
from beacon.models import Event

from ..conftest import Client, connect

pytestmark = pytest.mark.django_db(transaction=True)


def publish(stream: str, text: Any, client_id: str = "c1", ref: int = 1) -> dict[str, Any]:
    return {
        "op": "publish",
        "stream": stream,
        "type": "message",
        "data": {"text": text},
        "client_id": client_id,
        "id": ref,
    }


async def next_frame(client: Client, *types: str, timeout: float = 3) -> dict[str, Any]:
    """The next frame of one of ``types``, skipping the others (presence, heartbeats)."""
    while True:
        frame = await client.receive(timeout)
        if frame["type"] in types:
            return frame


async def rest(client: Client) -> list[str]:
    """The types of the frames still on their way (until 0.3 s pass with none)."""
    types = []
    while not await client.nothing(0.3):
        types.append((await client.receive())["type"])
    return types


async def enter(client: Client, room: Room) -> dict[str, Any]:
    """Subscribe to a room and take the presence snapshot that follows."""
    subscribed = await client.subscribe(room.stream)
    assert subscribed["type"] == "subscribed", subscribed
    snapshot = await next_frame(client, "presence")
    assert snapshot["stream"] == room.stream
    subscribed["presence"] = snapshot["members"]
    return subscribed


async def test_non_member_cannot_subscribe_to_a_private_room(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, mallory = await db_call(make_user, "alice"), await db_call(make_user, "mallory")
    room = await db_call(make_room, "secret", private=True, members=(alice,))
    async with connect(mallory) as client:
        refused = await client.subscribe(room.stream)
        assert refused["type"] == "error"
        assert refused["code"] == "forbidden"
        assert refused["stream"] == room.stream


async def test_non_member_cannot_post_in_a_private_room(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, mallory = await db_call(make_user, "alice"), await db_call(make_user, "mallory")
    room = await db_call(make_room, "secret", private=True, members=(alice,))
    async with connect(mallory) as client:
        await client.send(publish(room.stream, "let me in", ref=9))
        refused = await next_frame(client, "error")
        assert (refused["code"], refused["ref"]) == ("forbidden", 9)
    assert await db_call(Event.objects.count) == 0


async def test_a_room_that_does_not_exist_is_refused_like_a_private_one(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    async with connect(alice) as client:
        refused = await client.subscribe("room:999")
        assert refused["code"] == "forbidden"
        # "abc" names no room at all (no id is written so): a malformed name, not a secret.
        refused = await client.subscribe("room:abc")
        assert refused["code"] == "invalid_stream"


async def test_member_message_reaches_the_other_member_with_author_and_ack(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(alice) as a, connect(bob) as b:
        await enter(a, room)
        await enter(b, room)
        await a.send(publish(room.stream, "hi bob", client_id="m-1", ref=5))
        ack = await next_frame(a, "ack")
        assert ack == {
            "type": "ack",
            "op": "publish",
            "stream": room.stream,
            "seq": 1,
            "client_id": "m-1",
            "ref": 5,
        }
        message = await next_frame(b, "message")
        assert message["text"] == "hi bob"
        assert (message["author"], message["author_name"]) == (alice.pk, "alice")
        assert (message["seq"], message["client_id"]) == (1, "m-1")


async def test_resending_a_client_id_stores_and_delivers_once_and_acks_the_same_seq(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(bob) as b:
        await enter(b, room)
        async with connect(alice) as a:
            await a.send(publish(room.stream, "once", client_id="dup", ref=1))
            first = await next_frame(a, "ack")
        # A reconnect: a new socket resends what it had not seen acked.
        async with connect(alice) as a:
            await a.send(publish(room.stream, "once", client_id="dup", ref=2))
            again = await next_frame(a, "ack")
            await a.send(publish(room.stream, "next", client_id="other", ref=3))
            assert (await next_frame(a, "ack"))["seq"] == 2
        assert (first["seq"], again["seq"]) == (1, 1)
        assert again["ref"] == 2
        messages = [await next_frame(b, "message") for _ in range(2)]
        assert [(m["seq"], m["text"]) for m in messages] == [(1, "once"), (2, "next")]
        assert "message" not in await rest(b)
    assert await db_call(Event.objects.filter(type="message").count) == 2


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_or_blank_messages_are_refused(
    make_user: Any, make_room: Any, db_call: Any, text: str
) -> None:
    alice = await db_call(make_user, "alice")
    room = await db_call(make_room, "team", private=True, members=(alice,))
    async with connect(alice) as client:
        await client.send(publish(room.stream, text, ref=4))
        error = await next_frame(client, "error")
        assert (error["code"], error["ref"]) == ("invalid_message", 4)
        assert "empty" in error["message"]
    assert await db_call(Event.objects.count) == 0


@override_settings(BEACON_CHAT={"MAX_MESSAGE_LENGTH": 10})
async def test_a_message_over_the_size_limit_is_refused_and_one_at_it_is_stored(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    room = await db_call(make_room, "team", private=True, members=(alice,))
    async with connect(alice) as client:
        await client.send(publish(room.stream, "x" * 11, ref=1))
        error = await next_frame(client, "error")
        assert error["code"] == "invalid_message"
        assert "at most 10" in error["message"]
        await client.send(publish(room.stream, "x" * 10, ref=2))
        assert (await next_frame(client, "ack"))["seq"] == 1


@pytest.mark.parametrize(
    ("frame_type", "data", "code"),
    [
        ("message", {"text": 5}, "invalid_message"),
        ("message", {"text": "hi", "author": 1}, "invalid_message"),
        ("shout", {"text": "hi"}, "unsupported"),
    ],
)
async def test_messages_that_are_not_plain_text_are_refused(
    make_user: Any, make_room: Any, db_call: Any, frame_type: str, data: dict, code: str
) -> None:
    alice = await db_call(make_user, "alice")
    room = await db_call(make_room, "team", private=True, members=(alice,))
    async with connect(alice) as client:
        frame = {**publish(room.stream, ""), "type": frame_type, "data": data}
        await client.send(frame)
        assert (await next_frame(client, "error"))["code"] == code
    assert await db_call(Event.objects.count) == 0


async def test_subscribing_to_a_public_room_makes_you_a_member(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    room = await db_call(make_room, "lobby")
    async with connect(alice) as client:
        subscribed = await enter(client, room)
        assert subscribed["state"]["unread"] == 0
        assert subscribed["state"]["room"] == {"id": room.pk, "name": "lobby", "private": False}
    assert await db_call(Membership.objects.filter(room=room, user=alice).exists)


async def test_typing_reaches_the_others_once_per_interval_and_resets_on_send(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(alice) as a, connect(bob) as b:
        await enter(a, room)
        await enter(b, room)
        await next_frame(a, "join")  # bob's
        for _ in range(3):
            await a.send({"op": "typing", "stream": room.stream})
        typing = await next_frame(b, "typing")
        assert (typing["user"], typing["name"]) == (alice.pk, "alice")
        assert "seq" not in typing and typing["expires"] > 0
        # Sending a message clears the throttle: the next keystroke is announced again.
        await a.send(publish(room.stream, "done typing"))
        await next_frame(b, "message")
        await a.send({"op": "typing", "stream": room.stream})
        assert (await next_frame(b, "typing"))["user"] == alice.pk
        assert "typing" not in await rest(b)  # the two extra typing frames were throttled


async def test_typing_needs_a_subscription(make_user: Any, make_room: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    room = await db_call(make_room, "team", private=True, members=(alice,))
    async with connect(alice) as client:
        await client.send({"op": "typing", "stream": room.stream, "id": 3})
        assert (await next_frame(client, "error"))["code"] == "not_subscribed"


async def test_reading_sends_a_receipt_and_updates_the_room_list(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(alice) as a, connect(bob) as b:
        await enter(a, room)
        listing = await b.subscribe(f"rooms:{bob.pk}")
        assert listing["state"]["rooms"][0]["unread"] == 0
        for n in range(3):
            await a.send(publish(room.stream, f"m{n}", client_id=f"c{n}", ref=n))
            await next_frame(a, "ack")
        counts = [(await next_frame(b, "unread"))["unread"] for _ in range(3)]
        assert counts == [1, 2, 3]
        await b.send({"op": "read", "stream": room.stream, "up_to": 2, "id": 7})
        # The ack and the room list's event travel separately: either may come first.
        got = {f["type"]: f for f in [await next_frame(b, "ack", "unread") for _ in range(2)]}
        assert got["ack"]["op"] == "read"
        assert got["unread"]["unread"] == 1
        assert (got["unread"]["last_seq"], got["unread"]["last_read"]) == (3, 2)
        assert "seq" not in got["unread"]  # ephemeral: a 'seq' would read as the stream's own
        receipt = await next_frame(a, "receipt")
        while receipt["user"] == alice.pk:  # her own, from posting
            receipt = await next_frame(a, "receipt")
        assert (receipt["user"], receipt["name"], receipt["up_to"]) == (bob.pk, "bob", 2)
        async with connect(bob) as again:
            state = (await again.subscribe(room.stream))["state"]
            assert (state["last_read"], state["unread"]) == (2, 1)
            assert {"user": bob.pk, "name": "bob", "up_to": 2} in state["receipts"]


async def test_a_non_member_cannot_mark_a_private_room_read(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, mallory = await db_call(make_user, "alice"), await db_call(make_user, "mallory")
    room = await db_call(make_room, "secret", private=True, members=(alice,))
    async with connect(mallory) as client:
        await client.send({"op": "read", "stream": room.stream, "up_to": 1, "id": 1})
        assert (await next_frame(client, "error"))["code"] == "forbidden"


async def test_someone_elses_room_list_is_forbidden(make_user: Any, db_call: Any) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    async with connect(alice) as client:
        assert (await client.subscribe(f"rooms:{bob.pk}"))["code"] == "forbidden"


async def test_resume_replays_the_messages_missed_while_away(
    make_user: Any, make_room: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    room = await db_call(make_room, "team", private=True, members=(alice, bob))
    async with connect(bob) as b:
        first = await enter(b, room)
    async with connect(alice) as a:
        for n in range(2):
            await a.send(publish(room.stream, f"while away {n}", client_id=f"w{n}"))
            await next_frame(a, "ack")
    async with connect(bob) as b:
        await b.send(
            {"op": "subscribe", "stream": room.stream, "epoch": first["epoch"], "since": 0}
        )
        assert (await next_frame(b, "subscribed"))["recovered"] is True
        replayed = [await next_frame(b, "message") for _ in range(2)]
        assert [m["text"] for m in replayed] == ["while away 0", "while away 1"]
