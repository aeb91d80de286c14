"""The ASGI middleware that puts a connection's :class:`Identity` in its scope.

It fills the keys Channels' ``AuthMiddlewareStack`` fills (``cookies``, ``session``,
``user``), so consumers written for that stack work behind it, plus
``scope["beacon.identity"]`` (None: anonymous) and, when a credential was refused,
``scope["beacon.refused"]``: the close code to answer with (4001 or 4401).

Channels' ``AuthMiddlewareStack`` wraps every socket's ``send`` for the socket's whole
life, to save a modified session when a response starts, and keeps three more
coroutines suspended per socket. A WebSocket has no response after its handshake and
Beacon never writes the session, so this middleware runs once per connection, in one
hop to a thread, and leaves ``send`` alone (a consumer that changes the session saves
it itself, as Channels asks of WebSocket consumers anyway).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser

from ..db import database_call
from .core import Handshake, Identity, Refused, identify, session_store


class IdentityMiddleware:
    """``originless_cookies``: every credential counts without an ``Origin`` header too
    (the SSE endpoint: a same-origin ``EventSource`` request has none, and no CORS
    answer lets another origin read the response)."""

    def __init__(self, app: Any, *, originless_cookies: bool = False) -> None:
        self.app = app
        self.originless_cookies = originless_cookies

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        handshake = Handshake.from_scope(scope)
        identity, refused = await database_call(_identify)(
            handshake, self.originless_cookies
        )
        session = session_store()(identity.session_key if identity is not None else None)
        scope = {
            **scope,
            "cookies": dict(handshake.cookies),
            "session": session,
            "user": identity.user if identity is not None else AnonymousUser(),
            "beacon.identity": identity,
            "beacon.refused": refused,
        }
        return await self.app(scope, receive, send)


def _identify(handshake: Handshake, originless_cookies: bool) -> tuple[Identity | None, Any]:
    try:
        return identify(handshake, originless_cookies=originless_cookies), None
    except Refused as exc:
        return None, exc.code


class OriginlessBearerGate:
    """Let a handshake with no ``Origin`` header but a bearer token past the origin check.

    Browsers send ``Origin`` on every WebSocket handshake and cannot set
    ``Authorization`` on one, so such a handshake is a non-browser client and no
    cross-site page can make it. Every other handshake goes through ``checked`` (the
    origin check); ``unchecked`` is the same stack without it. Behind the gate,
    :func:`~beacon.identity.core.identify` tries only the bearer authenticator for an
    origin-less handshake, so a cookie or ticket sent without an origin counts for
    nothing.
    """

    def __init__(self, checked: Any, unchecked: Any) -> None:
        self.checked = checked
        self.unchecked = unchecked

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        names = {name for name, _ in scope.get("headers", ())}
        if b"origin" not in names and b"authorization" in names:
            return await self.unchecked(scope, receive, send)
        return await self.checked(scope, receive, send)
