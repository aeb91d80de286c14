"""Identity across real Daphne processes: logout, revocation, tickets, tokens, the cap.

Each test runs twice: on Redis (the channel layer carries the control orders) and in
the embedded default (no Redis: each process's log watcher brings them). Either way
the database is the test's (SQLite, or PostgreSQL under ``make test-postgres``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
import websockets
from django.conf import settings
from websockets.exceptions import ConnectionClosed

from beacon.chat.models import Membership, Room
from beacon.streams import user_stream

from .servers import Server, session_cookie
from .wsclient import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]

MODES = [pytest.param("redis", marks=pytest.mark.redis), "embedded"]


def mode_env(mode: str, **extra: str) -> dict[str, str]:
    # Embedded: no Redis even where the test run itself has one (make test-postgres).
    env = {"BEACON_LOG_POLL_SECONDS": "1", "REDIS_URL": "", **extra}
    if mode == "redis":
        # A slow log watcher: within the test's 5 s only Redis can bring the orders.
        env |= {
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "BEACON_REDIS_PREFIX": "identity-" + secrets.token_hex(4),
            "BEACON_LOG_POLL_SECONDS": "30",
        }
    return env


@contextlib.contextmanager
def two_servers(mode: str, **extra: str) -> Iterator[tuple[Server, Server]]:
    env = mode_env(mode, **extra)
    first, second = Server(**env), Server(**env)
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


def http(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def post(server: Server, path: str, cookie: str, body: Any = None) -> tuple[int, Any]:
    """A CSRF-valid POST as the signed-in user of ``cookie`` (a real browser's form)."""
    csrf = secrets.token_hex(16)
    status, raw = await asyncio.to_thread(
        http,
        f"{server.url}{path}",
        method="POST",
        body=json.dumps(body or {}).encode(),
        headers={
            "Content-Type": "application/json",
            "Cookie": f"sessionid={cookie}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
        },
    )
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


async def closed_with(client: WsClient, timeout: float = 5) -> int:
    """The close code the server sends within ``timeout`` (frames before it skipped)."""
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(timeout):
            while True:
                await client.ws.recv()
    assert info.value.rcvd is not None, "closed without a close frame"
    return info.value.rcvd.code


@contextlib.asynccontextmanager
async def opened(server: Server, cookie: str | None = None, path: str = "/ws/") -> AsyncIterator[
    WsClient
]:
    client = await WsClient.open(server, path=path, cookie=cookie)
    try:
        yield client
    finally:
        await client.close()


async def subscribed(client: WsClient, stream: str) -> dict[str, Any]:
    await client.send({"op": "subscribe", "stream": stream})
    return await client.receive_type("subscribed", "error")


# -- session end -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_logout_over_http_on_one_process_closes_the_sessions_sockets_on_both(
    mode: str, make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    cookie, other_session = await db_call(session_cookie, alice), await db_call(
        session_cookie, alice
    )
    with two_servers(mode) as (a, b):
        async with (
            opened(a, cookie) as on_a,
            opened(b, cookie, "/ws/notifications/") as on_b,
            opened(b, other_session) as elsewhere,
        ):
            for client in (on_a, elsewhere):
                assert (await subscribed(client, user_stream(alice)))["type"] == "subscribed"
            await on_b.receive_type("subscribed")
            status, _ = await post(a, "/accounts/logout/", cookie)
            assert status == 200  # the login page, after the redirect
            started = time.monotonic()
            assert await closed_with(on_a) == 4001
            assert await closed_with(on_b, timeout=5 - (time.monotonic() - started)) == 4001
            # The user's other session is not logged out: its socket stays.
            await elsewhere.send({"op": "ping", "id": 1})
            assert (await elsewhere.receive_type("pong"))["ref"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_deactivated_user_and_a_session_deleted_by_sql_are_closed(
    mode: str, make_user: Any, db_call: Any
) -> None:
    bob, carol = await db_call(make_user, "bob"), await db_call(make_user, "carol")
    bob_cookie, carol_cookie = await db_call(session_cookie, bob), await db_call(
        session_cookie, carol
    )

    def deactivate() -> None:
        bob.refresh_from_db()
        bob.is_active = False
        bob.save()

    def delete_session_by_sql(key: str) -> None:
        from django.db import connection

        with connection.cursor() as cursor:  # no signal: only re-validation can see it
            cursor.execute("DELETE FROM django_session WHERE session_key = %s", [key])

    with two_servers(mode, BEACON_REVALIDATE_SECONDS="1") as (a, b):
        async with opened(b, bob_cookie) as bob_ws, opened(a, carol_cookie) as carol_ws:
            await bob_ws.receive_type("welcome")
            await carol_ws.receive_type("welcome")
            await db_call(deactivate)
            await db_call(delete_session_by_sql, carol_cookie)
            assert await closed_with(bob_ws) == 4001
            assert await closed_with(carol_ws) == 4001


# -- revocation --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_member_leaving_on_a_stops_receiving_on_b(
    mode: str, make_user: Any, db_call: Any
) -> None:
    alice, bob, carol = [await db_call(make_user, name) for name in ("alice", "bob", "carol")]

    def make_room() -> Room:
        room = Room.objects.create(name="secret", is_private=True)
        for user in (alice, bob, carol):
            Membership.objects.create(room=room, user=user)
        return room

    room = await db_call(make_room)
    stream = room.stream
    cookies = [await db_call(session_cookie, u) for u in (alice, bob, carol)]
    with two_servers(mode) as (a, b):
        async with (
            opened(a, cookies[0]) as alice_ws,
            opened(b, cookies[1]) as bob_ws,
            opened(b, cookies[2]) as carol_ws,
        ):
            for client in (alice_ws, bob_ws, carol_ws):
                assert (await subscribed(client, stream))["type"] == "subscribed"
            status, answer = await post(a, f"/rooms/api/rooms/{room.pk}/leave/", cookies[1])
            assert (status, answer) == (200, {"left": True})
            gone = await bob_ws.receive_type("unsubscribed", timeout=5)
            assert gone == {"type": "unsubscribed", "stream": stream, "reason": "forbidden"}
            # Alice posts on A and Carol types on B: Carol gets both, Bob neither.
            await carol_ws.send({"op": "typing", "stream": stream})
            await alice_ws.send(
                {"op": "publish", "stream": stream, "type": "message", "client_id": "m1",
                 "data": {"text": "after bob left"}}
            )
            assert (await carol_ws.receive_type("message"))["text"] == "after bob left"
            await bob_ws.send({"op": "ping", "id": "after"})
            while True:
                frame = json.loads(await asyncio.wait_for(bob_ws.ws.recv(), 5))
                assert frame.get("stream") != stream, frame
                if frame["type"] == "pong":
                    break


# -- tickets -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_ticket_works_once_on_any_process_and_not_after_it_expires(
    mode: str, make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    cookie = await db_call(session_cookie, alice)
    with two_servers(mode, BEACON_TICKET_SECONDS="2") as (a, b):
        status, answer = await post(a, "/beacon/tickets/", cookie)
        assert status == 200 and answer["expires_in"] == 2
        ticket = answer["ticket"]
        async with opened(b, path=f"/ws/notifications/?ticket={ticket}") as first:
            welcome = await first.receive_type("welcome")
            assert welcome["user"] == alice.pk
            assert (await first.receive_type("subscribed"))["stream"] == user_stream(alice)
            async with opened(a, path=f"/ws/?ticket={ticket}") as again:
                assert await closed_with(again) == 4001
        status, answer = await post(b, "/beacon/tickets/", cookie)
        await asyncio.sleep(2.2)  # let it expire: nothing to wait on but the clock
        async with opened(a, path=f"/ws/?ticket={answer['ticket']}") as late:
            assert await closed_with(late) == 4001
        # Without a session or token, no ticket.
        status, answer = await asyncio.to_thread(http, f"{a.url}/beacon/tickets/", method="POST")
        assert status == 401
    for server in (a, b):
        assert ticket not in server.log_path.read_text(errors="replace")


# -- bearer tokens -----------------------------------------------------------------------


def token(user: Any, lifetime: float, **claims: Any) -> str:
    now = time.time()
    return jwt.encode(
        {"user_id": user.pk, "exp": now + lifetime, "iat": now, **claims},
        settings.SECRET_KEY,
        algorithm="HS256",
    )


async def bearer(server: Server, text: str, *, origin: str | None = None) -> WsClient:
    headers = {"Authorization": f"Bearer {text}"}
    ws = await websockets.connect(f"{server.ws_url}/ws/", origin=origin, additional_headers=headers)
    return WsClient(ws)


@pytest.mark.parametrize("mode", MODES)
async def test_a_jwt_connects_a_plain_client_and_is_closed_with_4401_when_it_expires(
    mode: str, make_user: Any, db_call: Any
) -> None:
    from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

    alice = await db_call(make_user, "alice")
    with two_servers(mode) as (a, _):
        # PyJWT, no cookie, no Origin header: a service or mobile app.
        client = await bearer(a, token(alice, 3))
        welcome = await client.receive_type("welcome")
        assert welcome["user"] == alice.pk
        assert (await subscribed(client, user_stream(alice)))["type"] == "subscribed"
        assert await closed_with(client, timeout=10) == 4401
        # djangorestframework-simplejwt's access token, unchanged; its refresh token: no.
        access = await db_call(lambda: str(AccessToken.for_user(alice)))
        client = await bearer(a, access)
        assert (await client.receive_type("welcome"))["user"] == alice.pk
        await client.close()
        refresh = await db_call(lambda: str(RefreshToken.for_user(alice)))
        assert await closed_with(await bearer(a, refresh)) == 4001
        # Expired already: fetch a new one (4401); forged: final (4001).
        assert await closed_with(await bearer(a, token(alice, -5))) == 4401
        forged = jwt.encode({"user_id": alice.pk, "exp": time.time() + 60}, "x" * 32)
        assert await closed_with(await bearer(a, forged)) == 4001
        # A token from a page of another site still meets the origin check.
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            await bearer(a, token(alice, 60), origin="http://evil.example")
        assert info.value.response.status_code == 403


# -- per-user caps -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_the_51st_socket_of_one_user_is_refused_with_4429(
    mode: str, make_user: Any, db_call: Any
) -> None:
    alice, bob = await db_call(make_user, "alice"), await db_call(make_user, "bob")
    cookie, bob_cookie = await db_call(session_cookie, alice), await db_call(session_cookie, bob)
    with two_servers(mode) as (a, b):
        # Across both processes with Redis; per process in the embedded mode.
        servers = (a, b) if mode == "redis" else (a,)
        sockets = []
        try:
            for i in range(50):
                client = await WsClient.open(servers[i % len(servers)], cookie=cookie)
                await client.receive_type("welcome")
                sockets.append(client)
            extra = await WsClient.open(servers[-1], cookie=cookie)
            assert await closed_with(extra) == 4429
            # Another user is not affected, and a closed socket frees a place.
            async with opened(a, bob_cookie) as other:
                await other.receive_type("welcome")
            await sockets.pop().close()
            async with asyncio.timeout(5):  # the server forgets it on its disconnect event
                while True:
                    again = await WsClient.open(servers[-1], cookie=cookie)
                    sockets.append(again)
                    with contextlib.suppress(ConnectionClosed):
                        await again.receive_type("welcome")
                        break
        finally:
            for client in sockets:
                await client.close()
