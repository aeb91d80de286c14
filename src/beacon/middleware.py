"""The ASGI middleware in front of Beacon's consumers: origin check, session auth.

Channels' ``AuthMiddlewareStack`` (cookies → session → user) wraps every socket's
``send`` for the socket's whole life, to save a modified session when a response
starts, and keeps three more coroutines suspended per socket. A WebSocket has no
response after its handshake, and Beacon reads the session once and never writes
it. :class:`SessionAuthMiddleware` loads the session and its user in one database
call at connect and leaves ``send`` alone; it fills ``scope["cookies"]``,
``scope["session"]`` and ``scope["user"]`` as Channels' stack does, so consumers
written for that stack work behind it (one that changes the session saves it
itself, as Channels asks of WebSocket consumers anyway).
"""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie

from . import metrics
from .db import database_call


class SessionAuthMiddleware:
    """Put the signed-in user (or ``AnonymousUser``) and the session in the scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        cookies = parse_cookie(
            "; ".join(v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"cookie")
        )
        session_key = cookies.get(settings.SESSION_COOKIE_NAME)
        if session_key:
            session, user = await database_call(_session_and_user)(session_key)
        else:  # no cookie, nothing to look up
            session, user = _session_store()(None), AnonymousUser()
        scope = {**scope, "cookies": cookies, "session": session, "user": user}
        return await self.app(scope, receive, send)


def _session_store() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def _session_and_user(session_key: str) -> tuple[Any, Any]:
    """Django's own lookup (``auth.get_user``: backend, session hash check, rotation)."""
    session = _session_store()(session_key)
    # get_user reads only ``request.session``: a stand-in request is enough.
    return session, get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]


class CountingOriginValidator(OriginValidator):
    """Channels' origin check that also counts what it refuses (``origin`` refusals)."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        valid = bool(super().valid_origin(parsed_origin))
        if not valid:
            metrics.rejected_handshake("origin")
        return valid


def allowed_hosts_origin_validator(app: Any) -> CountingOriginValidator:
    """As Channels' ``AllowedHostsOriginValidator``: origins from ``ALLOWED_HOSTS``."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return CountingOriginValidator(app, allowed_hosts)
