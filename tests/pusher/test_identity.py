"""Who a Pusher socket is, against a real Daphne: the auth endpoints take the session
(with CSRF) or a bearer JWT, and a signed-in socket ends with its session or user, and
loses a channel whose stream is revoked (``beacon.identity``)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import websockets
from channels.db import database_sync_to_async
from django.conf import settings

from ..servers import Server, session_cookie
from .clients import CSRF, KEY
from .test_wire import data, recv, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    with django_db_blocker.unblock():
        s = Server(
            BEACON_LOG_POLL_SECONDS="0.2",
            BEACON_REDIS_PREFIX=f"pusher-{uuid.uuid4().hex[:10]}",
        )
        s.start()
    try:
        yield s
    finally:
        s.stop()


def token(user: Any, lifetime: float = 300) -> str:
    claims = {"user_id": user.pk, "exp": time.time() + lifetime}
    return jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")


def post(server: Server, path: str, form: dict[str, str], headers: dict[str, str]) -> Any:
    """POST from a thread (the server may call back into the test database)."""

    def call() -> tuple[int, str]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}{path}",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return asyncio.to_thread(call)


def session(cookie: str, csrf: bool = True) -> dict[str, str]:
    if not csrf:
        return {"Cookie": f"sessionid={cookie}"}
    return {"Cookie": f"sessionid={cookie}; csrftoken={CSRF}", "X-CSRFToken": CSRF}


async def socket(server: Server) -> Any:
    ws = await websockets.connect(f"{server.ws_url}/app/{KEY}?protocol=7")
    ws.socket_id = data(await recv(ws, "pusher:connection_established"))["socket_id"]
    return ws


async def signin(server: Server, ws: Any, headers: dict[str, str]) -> None:
    status, body = await post(server, "/pusher/user-auth", {"socket_id": ws.socket_id}, headers)
    assert status == 200, body
    await send(ws, "pusher:signin", json.loads(body))
    await recv(ws, "pusher:signin_success")


async def subscribe(server: Server, ws: Any, channel: str, headers: dict[str, str]) -> None:
    form = {"socket_id": ws.socket_id, "channel_name": channel}
    status, body = await post(server, "/pusher/auth", form, headers)
    assert status == 200, body
    await send(ws, "pusher:subscribe", {"channel": channel, **json.loads(body)})
    await recv(ws, "pusher_internal:subscription_succeeded")


async def closed_with(ws: Any) -> tuple[int, int]:
    """The ``pusher:error`` code and the close code that follow it."""
    error = await recv(ws, "pusher:error", timeout=10)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None
    return data(error)["code"], info.value.rcvd.code


async def test_auth_endpoints_take_a_bearer_token_or_the_session_with_csrf(
    server: Server, make_user: Any
) -> None:
    alice = await database_sync_to_async(make_user)("alice")
    cookie = await database_sync_to_async(session_cookie)(alice)
    ws = await socket(server)
    try:
        form = {"socket_id": ws.socket_id, "channel_name": "private-demo.1"}
        bearer = {"Authorization": f"Bearer {token(alice)}"}
        status, body = await post(server, "/pusher/auth", form, bearer)
        assert status == 200 and json.loads(body)["auth"].startswith(KEY + ":")
        await subscribe(server, ws, "private-demo.2", bearer)
        await signin(server, ws, bearer)
        # A token that does not verify, an expired one: 401 and why; none at all: 403.
        bad = {"Authorization": "Bearer not-a-jwt"}
        assert (await post(server, "/pusher/auth", form, bad))[0] == 401
        expired = {"Authorization": f"Bearer {token(alice, -10)}"}
        status, body = await post(server, "/pusher/user-auth", form, expired)
        assert status == 401 and "expired" in body
        assert (await post(server, "/pusher/auth", form, {}))[0] == 403
        # The session needs the CSRF check; with it, it is enough.
        status, body = await post(server, "/pusher/auth", form, session(cookie, csrf=False))
        assert status == 403 and "CSRF" in body
        assert (await post(server, "/pusher/auth", form, session(cookie)))[0] == 200
    finally:
        await ws.close()


async def test_logout_closes_the_signed_in_socket_for_good(
    server: Server, make_user: Any
) -> None:
    """The session the user-auth request came from ends: 4009 (final for pusher-js);
    a socket signed in through another session of the same user stays."""
    from beacon.identity import end_sessions

    alice = await database_sync_to_async(make_user)("alice")
    first = await database_sync_to_async(session_cookie)(alice)
    second = await database_sync_to_async(session_cookie)(alice)
    ended, kept = await socket(server), await socket(server)
    try:
        await signin(server, ended, session(first))
        await signin(server, kept, session(second))
        await database_sync_to_async(end_sessions)(session_keys=[first])
        assert await closed_with(ended) == (4009, 4009)
        await send(kept, "pusher:ping")
        assert (await recv(kept, "pusher:pong"))["event"] == "pusher:pong"
    finally:
        await ended.close()
        await kept.close()


async def test_deactivating_the_user_closes_a_bearer_signed_in_socket(
    server: Server, make_user: Any
) -> None:
    bob = await database_sync_to_async(make_user)("bob")
    ws = await socket(server)
    try:
        await signin(server, ws, {"Authorization": f"Bearer {token(bob)}"})
        bob.is_active = False
        await database_sync_to_async(bob.save)()
        assert await closed_with(ws) == (4009, 4009)
    finally:
        await ws.close()


async def test_revoke_ends_the_channels_of_that_stream(server: Server, make_user: Any) -> None:
    """A member removed from a private room (``revoke(room:N)``): the socket's channel on
    it gets ``pusher:subscription_error`` 403 and no further event; others carry on."""
    from beacon.chat.models import Membership, Room
    from beacon.pusher.server import trigger

    carol = await database_sync_to_async(make_user)("carol")
    cookie = await database_sync_to_async(session_cookie)(carol)

    def make_room() -> Room:
        room = Room.objects.create(name="ops", is_private=True)
        Membership.objects.create(room=room, user=carol)
        return room

    room = await database_sync_to_async(make_room)()
    channel = f"private-room.{room.pk}"
    ws = await socket(server)
    try:
        await signin(server, ws, session(cookie))
        await subscribe(server, ws, channel, session(cookie))
        await send(ws, "pusher:subscribe", {"channel": "lobby"})
        await recv(ws, "pusher_internal:subscription_succeeded")
        await database_sync_to_async(trigger)([channel], "before", {"n": 1})
        assert (await recv(ws, "before"))["channel"] == channel
        await database_sync_to_async(Membership.objects.filter(room=room).delete)()
        error = await recv(ws, "pusher:subscription_error", timeout=10)
        assert error["channel"] == channel and data(error)["status"] == 403
        await database_sync_to_async(trigger)([channel], "after", {"n": 2})
        await database_sync_to_async(trigger)(["lobby"], "next", {"n": 3})
        got = await recv(ws)
        assert (got["event"], got["channel"]) == ("next", "lobby")
    finally:
        await ws.close()
