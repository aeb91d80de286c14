"""Credentials on the wire: the ticket fetcher's POST, URLs and origins.

The ticket endpoint here is a stdlib HTTP server that answers as ``POST
/beacon/tickets/`` is specified to (``{"ticket": …, "expires_in": N}``), so the
client's side is pinned before the server's exists.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from beacon.client import Closed, Forbidden, Unauthenticated, ticket_fetcher
from beacon.client.credentials import http_origin, with_query
from beacon.client.tail import websocket_url


class TicketEndpoint(BaseHTTPRequestHandler):
    status = 200
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append({"path": self.path, "headers": self.headers})  # any case
        body = json.dumps({"ticket": f"t{len(self.seen)}", "expires_in": 60}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[tuple[str, type[TicketEndpoint]]]:
    handler = type("Handler", (TicketEndpoint,), {"seen": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/beacon/tickets/", handler
    finally:
        server.shutdown()
        server.server_close()


async def test_a_ticket_is_fetched_with_a_bearer_token(
    endpoint: tuple[str, type[TicketEndpoint]],
) -> None:
    url, handler = endpoint

    async def token() -> str:
        return "jwt-1"

    fetch = ticket_fetcher(url, token=token)
    assert [await fetch(), await fetch()] == ["t1", "t2"]  # a new one every time
    headers = handler.seen[0]["headers"]
    assert headers["Authorization"] == "Bearer jwt-1"
    assert headers["Origin"] == http_origin(url)


async def test_a_ticket_fetched_with_a_session_cookie_meets_djangos_csrf_check(
    endpoint: tuple[str, type[TicketEndpoint]],
) -> None:
    url, handler = endpoint
    assert await ticket_fetcher(url, cookie="sessionid=abc")() == "t1"
    headers = handler.seen[0]["headers"]
    cookies = dict(part.split("=", 1) for part in headers["Cookie"].split("; "))
    assert cookies["sessionid"] == "abc"
    assert cookies["csrftoken"] == headers["X-CSRFToken"]
    assert len(headers["X-CSRFToken"]) == 32 and headers["X-CSRFToken"].isalnum()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, Unauthenticated), (403, Forbidden), (404, Closed), (503, OSError), (429, OSError)],
)
async def test_a_refused_ticket_is_final_and_a_failing_endpoint_is_retried(
    endpoint: tuple[str, type[TicketEndpoint]], status: int, error: type[Exception]
) -> None:
    url, handler = endpoint
    handler.status = status
    with pytest.raises(error) as info:
        await ticket_fetcher(url, token="x")()
    assert isinstance(info.value, Closed) == (status in (401, 403, 404))


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/ws/"),
        ("https://example.org/", "wss://example.org/ws/"),
        ("ws://h:1/ws/notifications/", "ws://h:1/ws/notifications/"),
        ("wss://h/ws/?x=1", "wss://h/ws/?x=1"),
    ],
)
def test_the_tail_takes_the_sites_address_or_the_sockets(given: str, url: str) -> None:
    assert websocket_url(given) == url


def test_the_tail_refuses_other_schemes() -> None:
    with pytest.raises(ValueError):
        websocket_url("ftp://h/")


def test_urls_and_origins() -> None:
    assert with_query("ws://h/ws/?a=1&ticket=old", ticket="new") == "ws://h/ws/?a=1&ticket=new"
    assert http_origin("wss://h:8443/ws/") == "https://h:8443"
    assert http_origin("ws://127.0.0.1:9/ws/") == "http://127.0.0.1:9"
