"""The handshake's middleware: who it is (the session cookie, Django's checks included)
and whether its origin is the site's own."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from beacon.identity.middleware import IdentityMiddleware
from beacon.middleware import OriginCheckMiddleware, origin_refusal

pytestmark = pytest.mark.django_db(transaction=True)


async def scope_seen(cookie: str | None) -> dict[str, Any]:
    """The scope the inner app gets for a handshake with this Cookie header."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await receive()
        await send({"type": "websocket.close"})

    # A browser's handshake: a cookie counts only beside an Origin (beacon.identity).
    headers = [(b"origin", b"http://testserver")]
    headers += [(b"cookie", cookie.encode())] if cookie else []
    communicator = WebsocketCommunicator(IdentityMiddleware(app), "/ws/", headers=headers)
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


# -- the origin check ------------------------------------------------------------------

TRUSTED = {"trusted_origins": ["https://beacon.example"]}
WILDCARD = {"trusted_origins": ["https://*.beacon.example"]}
SITE = {"secure": False, "host": "127.0.0.1:8000", "allowed_hosts": ["127.0.0.1", "localhost"]}

ORIGINS = [
    # (Origin header, the site's settings beyond SITE, refusal reason or None)
    ("http://127.0.0.1:8000", {}, None),
    ("HTTP://127.0.0.1:8000", {}, None),
    ("http://127.0.0.1:1", {}, "not the site's"),  # another port of the same host
    ("http://127.0.0.1", {}, "not the site's"),
    ("https://127.0.0.1:8000", {}, "not the site's"),  # https page against an http site
    ("http://localhost:8000", {}, "not the site's"),
    ("foo://localhost:9", {}, "malformed"),
    ("http://evil.example@127.0.0.1:8000", {}, "malformed"),
    ("http://127.0.0.1:8000/path", {}, "malformed"),
    ("http://127.0.0.1:99999", {}, "malformed"),
    ("null", {}, "missing"),
    (None, {}, "missing"),
    ("", {}, "missing"),
    # The site behind TLS (wss, or the proxy's header): only https is its origin.
    ("https://127.0.0.1:8000", {"secure": True}, None),
    ("http://127.0.0.1:8000", {"secure": True}, "not the site's"),
    # A Host that ALLOWED_HOSTS refuses is not an origin of the site.
    ("http://evil.example", {"host": "evil.example"}, "not the site's"),
    ("http://127.0.0.1:8000", {"host": None}, "not the site's"),
    # CSRF_TRUSTED_ORIGINS, exact and with Django's wildcard subdomains.
    ("https://beacon.example", TRUSTED, None),
    ("http://beacon.example", TRUSTED, "not the site's"),
    ("https://beacon.example:444", TRUSTED, "not the site's"),
    ("https://a.beacon.example", WILDCARD, None),
    ("http://a.beacon.example", WILDCARD, "not the site's"),
    ("https://evilbeacon.example", WILDCARD, "not the site's"),
]


@pytest.mark.parametrize(("origin", "site", "reason"), ORIGINS)
def test_the_origin_must_be_one_of_the_sites_own(
    origin: str | None, site: dict[str, Any], reason: str | None
) -> None:
    options = {"trusted_origins": [], **SITE, **site}
    assert origin_refusal(origin, **options) == reason


async def handshake(headers: list[tuple[bytes, bytes]], scheme: str = "ws") -> bool:
    """Whether the origin check lets a handshake through to the app behind it."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    communicator = WebsocketCommunicator(OriginCheckMiddleware(app), "/ws/", headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


def origin_refusals() -> float:
    import prometheus_client

    value = prometheus_client.REGISTRY.get_sample_value(
        "beacon_rejected_handshakes_total", {"reason": "origin"}
    )
    return value or 0.0


async def test_a_cross_port_handshake_is_refused_counted_and_logged_by_reason_only(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    before = origin_refusals()
    host = (b"host", b"127.0.0.1:8000")
    with caplog.at_level(logging.WARNING, logger="beacon.middleware"):
        assert not await handshake([host, (b"origin", b"http://127.0.0.1:1")])
        assert not await handshake([host, (b"origin", b"http://marker-7f3a.example@127.0.0.1")])
    assert origin_refusals() == before + 2
    assert caplog.messages == ["beacon: handshake refused: origin not the site's",
                               "beacon: handshake refused: origin malformed"]
    assert "marker-7f3a" not in caplog.text
    assert await handshake([host, (b"origin", b"http://127.0.0.1:8000")])
    assert origin_refusals() == before + 2


async def test_the_scheme_comes_from_the_socket_or_the_proxys_header(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["beacon.example"]
    host = (b"host", b"beacon.example")
    https = (b"origin", b"https://beacon.example")
    assert await handshake([host, https], scheme="wss")
    assert not await handshake([host, https], scheme="ws")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await handshake([host, https, (b"x-forwarded-proto", b"https")], scheme="ws")
    assert not await handshake([host, https, (b"x-forwarded-proto", b"http")], scheme="wss")
