"""The three credentials of a Beacon handshake, as the ``credentials`` phase sends them.

* ``session``: the user's ``sessionid`` cookie (and the page's ``Origin``);
* ``ticket``: ``ws/?ticket=…`` (and ``Origin``), each ticket asked for beforehand
  with ``POST /beacon/tickets/`` under the user's session and CSRF token;
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
