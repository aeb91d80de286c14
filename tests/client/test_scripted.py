"""The client against a scripted server: duplicates, epochs, close codes, resends, credentials."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection

from beacon.client import (
    Client,
    ClientClosed,
    Event,
    Forbidden,
    Refused,
    Subscribed,
    Subscription,
    Unauthenticated,
)

from .scripted import Script, accept_subscribe, event, hold, receive, send, welcome

FAST = {"min_delay": 0.01, "max_delay": 0.05}


async def take(sub: Subscription, count: int, timeout: float = 10) -> list[Any]:
    items = []
    async with asyncio.timeout(timeout):
        async for item in sub:
            items.append(item)
            if len(items) == count:
                break
    return items


def seqs(items: list[Any]) -> list[int | None]:
    return [item.seq for item in items if isinstance(item, Event)]


async def test_a_resume_that_overlaps_what_it_has_is_delivered_once() -> None:
    resumed: list[dict[str, Any]] = []

    async def first(ws: ServerConnection) -> None:
        await welcome(ws)
        await accept_subscribe(ws, seq=0)
        for seq in (1, 2, 3):
            await event(ws, seq)
        await ws.close(4012)

    async def second(ws: ServerConnection) -> None:
        await welcome(ws)
        resumed.append(await accept_subscribe(ws, seq=5))
        for seq in (2, 3, 4, 5, 5, 6):  # overlapping history, and a repeat
            await event(ws, seq)
        await hold(ws)

    async with Script(first, second) as script, Client(script.url, **FAST) as client:
        sub = await client.subscribe("user:7")
        items = await take(sub, 6)
        assert seqs(items) == [1, 2, 3, 4, 5, 6]
        assert sub.duplicates == 3
        assert resumed[0]["epoch"] == "e1" and resumed[0]["since"] == 3
        assert sub.recovered is True and client.connections == 2


async def test_the_servers_news_of_a_new_epoch_resets_the_position_and_is_surfaced() -> None:
    seen: list[Subscribed] = []

    async def handler(ws: ServerConnection) -> None:
        await welcome(ws)
        await accept_subscribe(ws, seq=40)
        await event(ws, 41)
        # The stream's history started over: the server says so unasked.
        await send(
            ws, type="subscribed", stream="user:7", epoch="e2", seq=2, recovered=False,
            reason="epoch_changed",
        )
        for seq in (1, 2, 3):  # 1 and 2 are covered by the reload the caller must do
            await event(ws, seq, epoch="e2")
        await hold(ws)

    async with Script(handler) as script, Client(script.url, **FAST) as client:
        sub = await client.subscribe("user:7", on_subscribed=seen.append)
        items = await take(sub, 3)
        assert isinstance(items[1], Subscribed)
        assert (items[1].recovered, items[1].reason, items[1].epoch, items[1].seq) == (
            False, "epoch_changed", "e2", 2
        )
        assert [seqs(items), items[2].epoch] == [[41, 3], "e2"]
        assert (sub.recovered, sub.reason, sub.epoch, sub.last) == (False, "epoch_changed", "e2", 3)
        assert [info.recovered for info in seen] == [True, False]


async def test_an_event_of_another_epoch_makes_the_client_ask_again() -> None:
    asked: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        await welcome(ws)
        await accept_subscribe(ws, seq=10)
        await event(ws, 11)
        await event(ws, 1, epoch="e2")  # dropped: another history
        # The client starts over: unsubscribe (whose answer is no news), then subscribe.
        gone = await receive(ws)
        assert gone["op"] == "unsubscribe"
        await send(ws, type="unsubscribed", stream="user:7", ref=gone["id"])
        frame = await receive(ws)
        asked.append(frame)
        await send(
            ws, type="subscribed", stream="user:7", epoch="e2", seq=1, recovered=False,
            reason="epoch_changed", ref=frame["id"],
        )
        await event(ws, 2, epoch="e2")
        await hold(ws)

    async with Script(handler) as script, Client(script.url, **FAST) as client:
        sub = await client.subscribe("user:7")
        items = await take(sub, 3)
        assert asked[0]["epoch"] == "e1" and asked[0]["since"] == 11
        assert seqs(items) == [11, 2]
        assert isinstance(items[1], Subscribed) and items[1].reason == "epoch_changed"
        assert sub.status == "subscribed" and client.subscriptions["user:7"] is sub


@pytest.mark.parametrize(("code", "error"), [(4001, Unauthenticated), (4003, Forbidden)])
async def test_a_final_close_code_ends_the_client_with_a_clear_exception(
    code: int, error: type[Exception]
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await welcome(ws)
        await accept_subscribe(ws)
        await event(ws, 1)
        await ws.close(code)

    async with Script(handler) as script:
        client = Client(script.url, **FAST)
        await client.connect()
        sub = await client.subscribe("user:7")
        with pytest.raises(error) as info:
            async for item in sub:
                assert item.seq == 1  # what arrived before the close is still handed over
        assert info.value.code == code  # type: ignore[attr-defined]
        with pytest.raises(error):
            await client.wait_closed()
        with pytest.raises(error):
            await client.subscribe("user:8")
        assert len(script.connections) == 1 and client.state == "disconnected"


async def test_a_server_that_is_not_there_is_retried_until_the_client_is_closed() -> None:
    async with Script(hold) as script:
        url = script.url
    attempts = 0

    async def get_token() -> str:
        nonlocal attempts
        attempts += 1
        return "t"

    client = Client(url, token=get_token, **FAST)
    connecting = asyncio.create_task(client.connect())
    async with asyncio.timeout(10):
        while attempts < 3:
            await asyncio.sleep(0.01)
    assert not connecting.done() and client.state == "connecting"
    await client.close()
    with pytest.raises(ClientClosed):
        await connecting


async def test_a_publish_whose_socket_dropped_is_sent_again_with_the_same_client_id() -> None:
    publishes: list[dict[str, Any]] = []

    async def first(ws: ServerConnection) -> None:
        await welcome(ws)
        publishes.append(await receive(ws, "publish"))
        await ws.close(4012)  # gone before the ack

    async def second(ws: ServerConnection) -> None:
        await welcome(ws)
        frame = await receive(ws, "publish")
        publishes.append(frame)
        await send(ws, type="ack", op="publish", stream=frame["stream"], seq=45,
                   client_id=frame["client_id"], ref=frame["id"])
        await hold(ws)

    async with Script(first, second) as script, Client(script.url, **FAST) as client:
        ack = await client.publish("room:3", "message", {"text": "hi"})
        assert ack.seq == 45
        assert publishes[0]["client_id"] == publishes[1]["client_id"] == ack.client_id
        assert publishes[0]["data"] == {"text": "hi"}


async def test_a_frame_refused_as_too_large_is_not_sent_again() -> None:
    async def first(ws: ServerConnection) -> None:
        await welcome(ws)
        await receive(ws, "publish")
        await ws.close(4009)

    pinged: list[dict[str, Any]] = []

    async def answer_pings(ws: ServerConnection) -> None:
        await welcome(ws)
        frame = await receive(ws)
        pinged.append(frame)
        await send(ws, type="pong", ref=frame["id"])
        await hold(ws)

    async with Script(first, answer_pings) as script, Client(script.url, **FAST) as client:
        with pytest.raises(Refused) as info:
            await client.publish("room:3", "message", {"text": "x"})
        assert info.value.code == "frame_too_large"
        await client.ping()
        assert pinged[0]["op"] == "ping"


async def test_an_error_frame_refuses_the_subscription_and_the_socket_goes_on() -> None:
    async def handler(ws: ServerConnection) -> None:
        await welcome(ws)
        frame = await receive(ws, "subscribe")
        await send(ws, type="error", code="forbidden", message="not allowed to subscribe to user:8",
                   stream="user:8", ref=frame["id"])
        await accept_subscribe(ws)
        await event(ws, 1)
        await hold(ws)

    async with Script(handler) as script, Client(script.url, **FAST) as client:
        with pytest.raises(Refused) as info:
            await client.subscribe("user:8")
        assert (info.value.code, info.value.stream) == ("forbidden", "user:8")
        sub = await client.subscribe("user:7")
        assert seqs(await take(sub, 1)) == [1]
        assert list(client.subscriptions) == ["user:7"]


async def test_an_unasked_unsubscribed_ends_that_subscription_with_its_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        await welcome(ws)
        await accept_subscribe(ws)
        await send(ws, type="unsubscribed", stream="user:7", reason="forbidden")
        await hold(ws)

    async with Script(handler) as script, Client(script.url, **FAST) as client:
        sub = await client.subscribe("user:7")
        with pytest.raises(Refused) as info:
            await take(sub, 1)
        assert info.value.code == "forbidden"


async def test_silence_for_two_heartbeats_counts_as_a_dead_socket() -> None:
    async def silent(ws: ServerConnection) -> None:
        await welcome(ws, heartbeat=0.1)
        await accept_subscribe(ws)
        await hold(ws)  # never pings

    async with Script(silent) as script, Client(script.url, **FAST) as client:
        await client.subscribe("user:7")
        async with asyncio.timeout(10):
            await script.wait_connections(2)
        assert script.connections[1].request is not None


async def test_a_fresh_ticket_and_token_are_fetched_before_every_connect() -> None:
    async def drop(ws: ServerConnection) -> None:
        await welcome(ws)
        await ws.close(4012)

    tickets = iter(f"ticket-{n}" for n in range(100))
    tokens = iter(f"token-{n}" for n in range(100))

    async def get_ticket() -> str:
        return next(tickets)

    async def get_token() -> str:
        return next(tokens)

    async with Script(drop) as script:
        async with Client(script.url + "?x=1", ticket=get_ticket, **FAST):
            async with asyncio.timeout(10):
                await script.wait_connections(3)
        queries = [
            parse_qs(urlsplit(ws.request.path).query)  # type: ignore[union-attr]
            for ws in script.connections[:3]
        ]
        assert [q["ticket"] for q in queries] == [["ticket-0"], ["ticket-1"], ["ticket-2"]]
        assert all(q["x"] == ["1"] for q in queries)

    async with Script(drop) as script:
        async with Client(script.url, token=get_token, **FAST):
            async with asyncio.timeout(10):
                await script.wait_connections(2)
        headers = [ws.request.headers for ws in script.connections[:2]]  # type: ignore[union-attr]
        assert [h["Authorization"] for h in headers] == ["Bearer token-0", "Bearer token-1"]
        assert headers[0]["Origin"] == script.url.replace("ws://", "http://").removesuffix("/ws/")


def test_one_credential_at_a_time() -> None:
    with pytest.raises(ValueError):
        Client("ws://127.0.0.1:1/ws/", cookie="sessionid=x", token="t")


async def test_an_expired_token_is_renewed_at_once_and_a_fixed_one_is_final() -> None:
    async def expire(ws: ServerConnection) -> None:
        await welcome(ws)
        await ws.close(4401)

    renewed = iter(f"token-{n}" for n in range(100))

    async def get_token() -> str:
        return next(renewed)

    async with Script(expire) as script:
        # Slow backoff, but 4401 starts the count over: the client is back within 0.5 s.
        async with Client(script.url, token=get_token, min_delay=0.5, max_delay=60):
            async with asyncio.timeout(10):
                await script.wait_connections(4)
        auth = [ws.request.headers["Authorization"] for ws in script.connections[:4]]  # type: ignore[union-attr]
        assert auth == [f"Bearer token-{n}" for n in range(4)]

    async with Script(expire) as script:
        client = Client(script.url, token="fixed", **FAST)
        await client.connect()
        with pytest.raises(Unauthenticated) as info:
            await client.wait_closed()
        assert info.value.code == 4401 and len(script.connections) == 1
