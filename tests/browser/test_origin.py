"""A page on another port of the same host cannot use the user's socket.

Cookies are not per port: a page served from ``http://127.0.0.1:OTHER`` sends alice's
session cookie with a WebSocket to ``127.0.0.1:PORT``. Only the origin check stands
between that page and her notifications and chat.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Page

from ..servers import Server
from .conftest import WAIT_MS, signed_in

pytestmark = pytest.mark.django_db(transaction=True)

# Opens a socket to Beacon and tells what came of it: the first frames, or the close.
PROBE = """url => new Promise(resolve => {
    const frames = [];
    const ws = new WebSocket(url);
    ws.onmessage = event => {
        frames.push(JSON.parse(event.data).type);
        if (frames.includes("subscribed")) { ws.close(); resolve({opened: true, frames}); }
    };
    ws.onclose = event => resolve({opened: false, code: event.code, frames});
})"""


@pytest.fixture
def other_port_site() -> Iterator[str]:
    """A plain page served from another port of 127.0.0.1."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>another site</title><p>hello</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_page_on_another_port_cannot_open_a_socket_with_the_users_cookie(
    new_context: Any, server: Server, make_user: Any, other_port_site: str
) -> None:
    alice = make_user("alice")
    context = signed_in(new_context(), server, alice)
    context.set_default_timeout(WAIT_MS)
    url = f"{server.ws_url}/ws/notifications/"

    own: Page = context.new_page()
    own.goto(f"{server.url}/accounts/login/")
    assert own.evaluate(PROBE, url) == {"opened": True, "frames": ["welcome", "subscribed"]}

    other: Page = context.new_page()
    other.goto(other_port_site)
    outcome = other.evaluate(PROBE, url)
    # Refused at the handshake (HTTP 403): the browser reports 1006 and nothing arrives.
    assert outcome == {"opened": False, "code": 1006, "frames": []}
