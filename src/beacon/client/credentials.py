"""What a handshake carries to say who the client is: a cookie, a ticket or a token.

* **Session cookie**: the ``Cookie`` header as a browser would send it
  (``"sessionid=…"``), read by the server once per handshake.
* **Ticket**: single-use and short-lived, so an async callable fetches a fresh one
  before *every* connect; it travels as ``?ticket=…`` in the URL.
  :func:`ticket_fetcher` makes such a callable for ``POST /beacon/tickets/``.
* **Bearer token**: ``Authorization: Bearer <token>``; a string, or an async callable
  called before every connect so an expired token is replaced by a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .exceptions import Closed, Forbidden, Unauthenticated

#: An async callable that returns a fresh credential (ticket or token).
Fetch = Callable[[], Awaitable[str]]


@dataclass(frozen=True, kw_only=True)
class Credentials:
    cookie: str | None = None
    token: str | Fetch | None = None
    ticket: Fetch | None = None

    async def apply(self, url: str, headers: dict[str, str]) -> str:
        """Fetch what must be fresh and add it to the handshake; returns the URL to open."""
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.token is not None:
            token = self.token if isinstance(self.token, str) else await self.token()
            headers["Authorization"] = f"Bearer {token}"
        if self.ticket is not None:
            url = with_query(url, ticket=await self.ticket())
        return url


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query string (replacing any of the same name)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def http_origin(url: str) -> str:
    """The ``Origin`` a page served by the same host would send: ``ws://h:p/…`` → ``http://h:p``."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def ticket_fetcher(
    ticket_url: str,
    *,
    token: str | Fetch | None = None,
    cookie: str | None = None,
    origin: str | None = None,
    timeout: float = 10,
) -> Fetch:
    """An async callable that POSTs to ``ticket_url`` and returns the new ticket.

    The POST is authenticated by ``token`` (bearer) or ``cookie`` (session; Django's
    CSRF check is met with a token of our own in both the cookie and the header). A
    401/403 answer raises :class:`Unauthenticated`/:class:`Forbidden` (final); other
    failures raise ``OSError``, so the client retries with backoff.
    """
    origin = origin or http_origin(ticket_url)

    async def fetch() -> str:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        headers["Origin"] = origin
        headers["Referer"] = origin + "/"
        if token is not None:
            value = token if isinstance(token, str) else await token()
            headers["Authorization"] = f"Bearer {value}"
        if cookie:
            csrf = secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")[:32]
            headers["Cookie"] = f"{cookie}; csrftoken={csrf}"
            headers["X-CSRFToken"] = csrf
        return await asyncio.to_thread(_post, ticket_url, headers, timeout)

    return fetch


def _post(url: str, headers: dict[str, str], timeout: float) -> str:
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise refusal(exc.code, f"the ticket endpoint answered HTTP {exc.code}") from None
    except ValueError:
        raise OSError("the ticket endpoint did not answer JSON") from None
    ticket = body.get("ticket") if isinstance(body, dict) else None
    if not isinstance(ticket, str) or not ticket:
        raise OSError("the ticket endpoint's answer has no 'ticket'")
    return ticket


def refusal(status: int, reason: str) -> Exception:
    """The exception for an HTTP answer: final for 4xx (but 408/429), else retry (OSError)."""
    if status == 401:
        return Unauthenticated(None, reason)
    if status == 403:
        return Forbidden(None, reason)
    if 400 <= status < 500 and status not in (408, 429):
        return Closed(None, reason)
    return OSError(reason)
