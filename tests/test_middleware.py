"""Session auth at connect: the user behind the cookie, Django's checks included."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from beacon.middleware import SessionAuthMiddleware

pytestmark = pytest.mark.django_db(transaction=True)


async def scope_seen(cookie: str | None) -> dict[str, Any]:
    """The scope the inner app gets for a handshake with this Cookie header."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await receive()
        await send({"type": "websocket.close"})

    headers = [(b"cookie", cookie.encode())] if cookie else []
    communicator = WebsocketCommunicator(SessionAuthMiddleware(app), "/ws/", headers=headers)
    await communicator.connect()
    return seen


def signed_in_session(user: Any) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    assert session.session_key is not None
    return session.session_key


async def test_the_session_cookie_names_the_user(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    key = await db_call(signed_in_session, alice)
    scope = await scope_seen(f"theme=dark; {settings.SESSION_COOKIE_NAME}={key}")
    assert scope["user"] == alice
    assert scope["session"].session_key == key
    assert scope["cookies"]["theme"] == "dark"


async def test_no_cookie_and_unknown_sessions_are_anonymous() -> None:
    assert not (await scope_seen(None))["user"].is_authenticated
    scope = await scope_seen(f"{settings.SESSION_COOKIE_NAME}=no-such-session")
    assert not scope["user"].is_authenticated


async def test_a_password_change_signs_the_socket_out(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    key = await db_call(signed_in_session, alice)

    def change_password() -> None:
        alice.set_password("a-new-one")
        alice.save()

    await db_call(change_password)
    scope = await scope_seen(f"{settings.SESSION_COOKIE_NAME}={key}")
    assert not scope["user"].is_authenticated
