"""The three credentials of a Beacon handshake, as the ``credentials`` phase sends them.

* ``session``: the user's ``sessionid`` cookie (and the page's ``Origin``);
* ``ticket``: ``ws/?ticket=…`` (and ``Origin``), every ticket made beforehand, bound
  to the user's session: the warm-up ones with ``POST /beacon/tickets/`` (session
  cookie and CSRF token), the measured ones by ``issue_ticket`` (see
  :func:`issue_tickets`);
* ``bearer``: ``Authorization: Bearer <JWT>`` and no ``Origin`` (a service or a
  mobile app, not a browser): HS256 with the settings' ``SECRET_KEY``, the user id in
  ``user_id``, as djangorestframework-simplejwt makes them.

The reference servers (raw, bare ASGI) take no credential: ``none``.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .database import BenchUser
from .loadgen import SocketSpec

BEACON_CREDENTIALS = ("session", "ticket", "bearer")


def make_token(user_pk: int, key: str, lifetime: float = 3600.0) -> str:
    """An access token for ``user_pk`` (HS256 with ``key``)."""
    import jwt

    claims = {"user_id": user_pk, "exp": int(time.time() + lifetime), "token_type": "access"}
    return jwt.encode(claims, key, algorithm="HS256")


def ticket_request(base_url: str, cookie: str) -> urllib.request.Request:
    """``POST beacon/tickets/`` signed in by the session cookie, with a CSRF token (any
    32 alphanumerics: Django compares the cookie with the header; no ``Origin`` or
    ``Referer`` is needed over plain HTTP)."""
    csrf = secrets.token_hex(16)
    return urllib.request.Request(
        f"{base_url}/beacon/tickets/",
        data=b"",
        method="POST",
        headers={"Cookie": f"sessionid={cookie}; csrftoken={csrf}", "X-CSRFToken": csrf},
    )


def fetch_ticket(base_url: str, cookie: str) -> str:
    with urllib.request.urlopen(ticket_request(base_url, cookie), timeout=60) as r:
        answer: dict[str, Any] = json.loads(r.read())
    return str(answer["ticket"])


def fetch_tickets(base_url: str, cookies: list[str], threads: int = 8) -> list[str]:
    """One ticket per cookie, in order (before the measured window: not handshake CPU)."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda c: fetch_ticket(base_url, c), cookies))


def issue_tickets(users: list[BenchUser]) -> list[str]:
    """One ticket per user, bound to the user's session, written by the harness with the
    function ``POST /beacon/tickets/`` calls (``issue_ticket``).

    Not over HTTP: the bench settings keep persistent connections (``CONN_MAX_AGE``),
    and under ASGI each HTTP request runs in a thread of its own whose connection stays
    open, so a thousand ticket requests exhaust PostgreSQL's ``max_connections`` (a
    shared server here). The handshake that redeems the ticket is the same either way.
    """
    from django.contrib.auth import get_user_model

    from beacon.identity.authenticators import issue_ticket

    by_pk = get_user_model()._default_manager.in_bulk([u.pk for u in users])
    return [
        issue_ticket(by_pk[u.pk], session_key=u.cookie, credential_expires=None) for u in users
    ]


def specs(
    credential: str,
    users: list[BenchUser],
    start: int,
    *,
    tickets: list[str] | None = None,
    key: str = "",
) -> list[SocketSpec]:
    """One socket per user, indexes from ``start``, sending ``credential``."""
    if credential not in (*BEACON_CREDENTIALS, "none"):
        raise ValueError(f"unknown credential {credential!r}")
    if credential == "ticket" and (tickets is None or len(tickets) < len(users)):
        raise ValueError("one ticket per user")
    out = []
    for n, user in enumerate(users):
        out.append(
            SocketSpec(
                index=start + n,
                user_index=user.index,
                user_pk=user.pk,
                cookie=user.cookie if credential == "session" else "",
                ticket=tickets[n] if credential == "ticket" and tickets else "",
                token=make_token(user.pk, key) if credential == "bearer" else "",
                origin=credential != "bearer",
            )
        )
    return out
