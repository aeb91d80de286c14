"""The Python client against real Daphne processes, signed in with a session cookie."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

import beacon
from beacon import eventlog
from beacon.chat.models import Membership, Room
from beacon.client import Client, Event, Forbidden, Refused, Subscribed, Unauthenticated, merge
from beacon.streams import user_stream

from ..servers import ROOT, Server, running, server_env, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"min_delay": 0.05, "max_delay": 0.5}


@pytest.fixture
def alice(make_user: Callable[[str], Any]) -> Any:
    return make_user("alice")


@pytest.fixture
async def cookie(alice: Any, db_call: Any) -> str:
    return "sessionid=" + await db_call(session_cookie, alice)


def make_room(user: Any) -> Room:
    room = Room.objects.create(name="team", is_private=True)
    Membership.objects.create(room=room, user=user)
    return room


async def events(items: Any, count: int, timeout: float = 20) -> list[Event]:
    """The next ``count`` durable events of a subscription (or a merge).

    Notices, and ephemeral events (a room's presence and join), are skipped.
    """
    found: list[Event] = []
    async with asyncio.timeout(timeout):
        async for item in items:
            if isinstance(item, Event) and item.seq is not None:
                found.append(item)
                if len(found) == count:
                    break
    return found


async def test_two_streams_over_one_socket_in_order(alice: Any, cookie: str, db_call: Any) -> None:
    room = await db_call(make_room, alice)
    with running() as server:
        async with Client(f"{server.ws_url}/ws/", cookie=cookie) as client:
            mine = await client.subscribe(user_stream(alice))
            team = await client.subscribe(f"room:{room.pk}")
            assert (mine.recovered, team.recovered) == (True, True)
            for n in range(5):
                await db_call(beacon.notify, alice, f"note {n}")
                await db_call(beacon.publish, f"room:{room.pk}", "update", {"n": n})
            notes, updates = await events(mine, 5), await events(team, 5)
            assert [e.data["message"] for e in notes] == [f"note {n}" for n in range(5)]
            assert [e.seq for e in notes] == [1, 2, 3, 4, 5]
            assert [(e.type, e.data["n"]) for e in updates] == [("update", n) for n in range(5)]
            assert [e.seq for e in updates] == sorted(e.seq for e in updates)  # type: ignore[type-var]
            assert client.connections == 1 and client.user == alice.pk


async def test_a_killed_and_restarted_server_loses_and_repeats_nothing(
    alice: Any, cookie: str, db_call: Any
) -> None:
    total = 60
    server = Server().start()
    try:
        async with Client(f"{server.ws_url}/ws/", cookie=cookie, **FAST) as client:
            sub = await client.subscribe(user_stream(alice))
            first_ten = asyncio.Event()

            async def publisher() -> None:
                for n in range(1, total + 1):
                    await db_call(beacon.notify, alice, f"n{n}")
                    if n == 10:
                        await first_ten.wait()
                    await asyncio.sleep(0.02)  # paces the writer; nothing waits on it

            writing = asyncio.create_task(publisher())
            got = await events(sub, 10)
            first_ten.set()
            server.kill()  # SIGKILL: no close frame, no drain
            server = Server(port=server.port).start()
            got += await events(sub, total - 10, timeout=60)
            await writing
            assert [e.data["message"] for e in got] == [f"n{n}" for n in range(1, total + 1)]
            assert [e.seq for e in got] == list(range(1, total + 1))
            assert client.connections >= 2 and sub.recovered is True
            assert sub.duplicates == 0  # the server sent nothing twice either
    finally:
        server.stop()


async def test_a_resume_past_the_retention_window_is_surfaced_as_not_recovered(
    alice: Any, cookie: str, db_call: Any
) -> None:
    seen: list[Subscribed] = []
    server = Server().start()
    try:
        async with Client(f"{server.ws_url}/ws/", cookie=cookie, **FAST) as client:
            sub = await client.subscribe(user_stream(alice), on_subscribed=seen.append)
            for n in range(1, 4):
                await db_call(beacon.notify, alice, f"n{n}")
            assert [e.seq for e in await events(sub, 3)] == [1, 2, 3]
            server.kill()
            for n in range(4, 11):
                await db_call(beacon.notify, alice, f"n{n}")

            def prune() -> int:
                with override_settings(BEACON={"RETENTION_EVENTS": 2}):
                    return eventlog.prune()

            await db_call(prune)
            # 1-8 are gone, 9-10 kept: 4-8 cannot be replayed.
            position = await db_call(eventlog.position, user_stream(alice))
            assert (position.first_seq, position.last_seq) == (9, 10)
            server = Server(port=server.port).start()
            async with asyncio.timeout(20):
                notice = await anext(sub)
            assert isinstance(notice, Subscribed)
            assert (notice.recovered, notice.reason, notice.seq, notice.resumed) == (
                False, "retention", 10, True
            )
            assert (sub.recovered, sub.reason, sub.last) == (False, "retention", 10)
            assert [(s.recovered, s.reason) for s in seen] == [(True, None), (False, "retention")]
            await db_call(beacon.notify, alice, "n11")
            assert [e.seq for e in await events(sub, 1)] == [11]
    finally:
        server.stop()


async def test_a_stream_recreated_under_the_client_is_surfaced_as_a_new_epoch(
    alice: Any, cookie: str, db_call: Any
) -> None:
    from beacon.models import Stream

    stream = user_stream(alice)
    with running() as server:
        async with Client(f"{server.ws_url}/ws/", cookie=cookie, **FAST) as client:
            sub = await client.subscribe(stream)
            for n in (1, 2):
                await db_call(beacon.notify, alice, f"old {n}")
            assert [e.seq for e in await events(sub, 2)] == [1, 2]
            old_epoch = sub.epoch
            await db_call(lambda: Stream.objects.filter(name=stream).delete())
            for n in (1, 2, 3):  # a new history: seqs 1-3 again, another epoch
                await db_call(beacon.notify, alice, f"new {n}")
            async with asyncio.timeout(20):
                notice = await anext(sub)  # nothing of the new history is spliced on first
            assert isinstance(notice, Subscribed)
            assert (notice.recovered, notice.reason) == (False, "epoch_changed")
            assert notice.epoch != old_epoch and sub.epoch == notice.epoch
            await db_call(beacon.notify, alice, "after")
            # The notice carries the position the server answered at: new events written
            # after it (the resubscribe can race "new 2" and "new 3") follow it in order.
            later = await events(sub, 4 - notice.seq)
            assert [(e.data["message"], e.epoch, e.seq) for e in later] == [
                (f"new {n}", notice.epoch, n) for n in range(notice.seq + 1, 4)
            ] + [("after", notice.epoch, 4)]


async def test_publish_is_acked_and_a_resend_with_the_same_client_id_stored_once(
    alice: Any, cookie: str, db_call: Any
) -> None:
    room = await db_call(make_room, alice)
    stream = f"room:{room.pk}"
    with running() as server:
        async with Client(f"{server.ws_url}/ws/", cookie=cookie) as client:
            sub = await client.subscribe(stream)
            ack = await client.publish(stream, "message", {"text": "hi"}, client_id="c-1")
            again = await client.publish(stream, "message", {"text": "hi"}, client_id="c-1")
            other = await client.publish(stream, "message", {"text": "second"})
            assert again.seq == ack.seq and other.seq > ack.seq
            messages = await events(sub, 2)
            assert [(m.seq, m.data["text"]) for m in messages] == [
                (ack.seq, "hi"), (other.seq, "second")
            ]
            assert messages[0].data["client_id"] == "c-1"
            with pytest.raises(Refused) as info:
                await client.publish(user_stream(alice), "message", {"text": "x"})
            assert info.value.code == "forbidden"  # the user stream takes no client publishes
            with pytest.raises(Refused) as info:
                await client.subscribe("user:999999")
            assert info.value.code == "forbidden"
            assert (await client.ping())["type"] == "pong"  # the socket goes on


async def test_no_session_is_a_final_4001_and_a_foreign_origin_a_final_403() -> None:
    with running() as server:
        with pytest.raises(Unauthenticated) as no_session:
            await Client(f"{server.ws_url}/ws/", **FAST).connect()
        assert no_session.value.code == 4001
        with pytest.raises(Forbidden) as foreign:
            await Client(f"{server.ws_url}/ws/", origin="http://evil.example", **FAST).connect()
        assert "403" in str(foreign.value)


async def test_the_tail_command_prints_one_json_object_per_event(
    alice: Any, cookie: str, db_call: Any
) -> None:
    room = await db_call(make_room, alice)
    for n in range(1, 4):
        await db_call(beacon.notify, alice, f"n{n}")
    with running() as server:
        tail = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "beacon.client", "tail", server.url,
            user_stream(alice), "--since", "0", "--cookie", cookie, "--count", "4",
            cwd=ROOT, env=server_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert tail.stdout is not None
        async with asyncio.timeout(30):
            lines = [json.loads(await tail.stdout.readline()) for _ in range(3)]
            # Replayed, so the tail is following: the next one arrives live.
            await db_call(beacon.notify, alice, "live")
            lines.append(json.loads(await tail.stdout.readline()))
            assert await tail.wait() == 0
        assert [(f["type"], f["seq"], f["message"]) for f in lines] == [
            ("notification", 1, "n1"), ("notification", 2, "n2"), ("notification", 3, "n3"),
            ("notification", 4, "live"),
        ]
        both = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "beacon.client", "tail", f"{server.ws_url}/ws/",
            user_stream(alice), f"room:{room.pk}", "user:999999", "--cookie", cookie,
            cwd=ROOT, env=server_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            out, err = await both.communicate()
        assert both.returncode == 2 and out == b""
        assert b"forbidden" in err


async def test_merge_follows_several_subscriptions_in_arrival_order(
    alice: Any, cookie: str, db_call: Any
) -> None:
    room = await db_call(make_room, alice)
    with running() as server:
        async with Client(f"{server.ws_url}/ws/", cookie=cookie) as client:
            subs = [await client.subscribe(s) for s in (user_stream(alice), f"room:{room.pk}")]
            await db_call(beacon.notify, alice, "a")
            got = await events(merge(*subs), 1)
            await db_call(beacon.publish, f"room:{room.pk}", "update", {"n": 1})
            got += await events(merge(*subs), 1)
            assert [e.stream for e in got] == [user_stream(alice), f"room:{room.pk}"]
