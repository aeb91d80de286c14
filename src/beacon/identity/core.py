"""Who a handshake is: the :class:`Identity` every front door gets, and how it is made.

A front door (the WebSocket consumers today; an SSE endpoint, another protocol, a
Python client's endpoint tomorrow) turns what it received into a :class:`Handshake`
and calls :func:`identify`: the authenticators named in ``BEACON["AUTHENTICATORS"]``
are tried in order. Each one looks for its own credential and answers

* ``None`` — no credential of its kind here: try the next one;
* an :class:`Identity` — the user, and until when, and how they were recognized;
* :class:`Refused` — a credential of its kind that does not hold: stop, refuse with
  its close code (4001 final, or 4401 "fetch a new credential and reconnect").

Nothing here writes a credential to a log: ``Handshake`` and ``Identity`` keep no
ticket or token text in their ``repr``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.core.signals import setting_changed
from django.http.cookie import parse_cookie
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from ..conf import get_config
from ..protocol import CloseCode


@dataclass(frozen=True, slots=True, eq=False)
class Identity:
    """Who a socket (or any other connection) is, for its whole life.

    ``method`` names the authenticator (``session``, ``ticket``, ``bearer``, or
    ``scope`` for a user put in the scope by other middleware). ``session_key`` is the
    Django session the credential came from (a session cookie, or the session that
    issued a ticket): when it ends, the connection ends. ``expires_at`` (Unix time) is
    when the credential itself stops being valid (a token's ``exp``); None: it lives as
    long as the session, or the user, does.
    """

    user: Any
    method: str
    session_key: str | None = field(default=None, repr=False)
    expires_at: float | None = None

    @property
    def user_id(self) -> Any:
        return getattr(self.user, "pk", None)

    @property
    def session_id(self) -> str | None:
        """A keyed hash of the session key: safe to publish and to log, unlike the key."""
        return None if self.session_key is None else session_id(self.session_key)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


def session_id(session_key: str) -> str:
    """What control messages name a session by: never the key itself."""
    digest = salted_hmac("beacon.identity.session", session_key, algorithm="sha256")
    return digest.hexdigest()[:32]


class Refused(Exception):
    """A credential was offered and does not hold: refuse the handshake with ``code``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a front door knows of a connection attempt, in a form every door can fill.

    ``origin`` is the ``Origin`` header (None when absent; see :data:`ORIGINLESS`).
    """

    headers: Mapping[str, str] = field(repr=False)
    query: Mapping[str, str] = field(repr=False)
    cookies: Mapping[str, str] = field(repr=False)
    origin: str | None = None
    path: str = ""

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> Handshake:
        """From an ASGI ``http`` or ``websocket`` scope (headers are lower-case bytes)."""
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}; {text}" if key == "cookie" and key in headers else text
        query = {
            k: v[0]
            for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()
        }
        return cls(
            headers=headers,
            query=query,
            cookies=parse_cookie(headers.get("cookie", "")),
            origin=headers.get("origin"),
            path=scope.get("path", ""),
        )

    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer …`` header, if there is one."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None


class Authenticator:
    """One kind of credential. Subclasses implement :meth:`authenticate` (synchronous:
    it runs off the event loop and may query the database)."""

    #: Whether a handshake without an ``Origin`` header may use this credential. Only
    #: a credential a browser never sends on its own (a bearer token) should say yes.
    accepts_originless = False

    def authenticate(self, handshake: Handshake) -> Identity | None:
        raise NotImplementedError

    def revalidate(self, identities: list[Identity]) -> set[Identity]:
        """Of these live identities (all made by this authenticator), those that no longer
        hold. Called every ``REVALIDATE_SECONDS`` with every identity of the process at
        once, so an implementation should ask the database once, not once per identity.
        The default checks what every built-in credential depends on, for all of
        them together in two queries: the credential's expiry, the user (still there,
        still active) and the session it came from (still there, same password).
        """
        from .authenticators import ended

        return ended(identities)


@cache
def authenticators() -> list[Authenticator]:
    """The configured authenticators, in order (``BEACON["AUTHENTICATORS"]``)."""
    return [import_string(path)() for path in get_config()["AUTHENTICATORS"]]


def _clear(*, setting: str, **kwargs: Any) -> None:
    if setting in ("BEACON", "SECRET_KEY"):
        authenticators.cache_clear()


setting_changed.connect(_clear, weak=False)


def identify(handshake: Handshake, *, originless_cookies: bool = False) -> Identity | None:
    """The identity of a handshake, or None (anonymous); raises :class:`Refused`.

    A handshake without an ``Origin`` header (a non-browser client) is tried only with
    the authenticators that accept one (the bearer token): a cookie or ticket sent
    without an origin is ignored, so it ends up anonymous (4001). Unless
    ``originless_cookies`` (the SSE endpoint, where that rule protects nothing).
    """
    for auth in authenticators():
        if handshake.origin is None and not (auth.accepts_originless or originless_cookies):
            continue
        identity = auth.authenticate(handshake)
        if identity is not None:
            if identity.expired():
                raise Refused(CloseCode.CREDENTIAL_EXPIRED, "credential expired")
            return identity
    return None


def session_store() -> Any:
    from importlib import import_module

    return import_module(settings.SESSION_ENGINE).SessionStore
