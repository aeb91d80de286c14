"""The browser's own ``EventSource`` on ``/beacon/events/``, unchanged, in headless Chromium.

Live events, then the server (Daphne, Uvicorn) is SIGKILLed and restarted on the same port while
events keep being written: ``EventSource`` reconnects by itself, sends the last id as
``Last-Event-ID``, and the page ends with every event exactly once, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Request

from beacon import notify
from beacon.streams import user_stream

from ..servers import Server, session_cookie
from .conftest import SERVER_ENV, VIEWPORT, WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOLLOW = """(path) => {
    window.seqs = []; window.ids = []; window.opens = 0; window.subscribed = [];
    const source = new EventSource(path);
    source.onopen = () => { window.opens += 1; };
    source.addEventListener("subscribed", (e) => window.subscribed.push(JSON.parse(e.data)));
    source.addEventListener("notification", (e) => {
        window.seqs.push(JSON.parse(e.data).seq);
        window.ids.push(e.lastEventId);
    });
    window.source = source;
}"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT)
    yield context
    context.close()


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_eventsource_follows_a_stream_across_a_server_restart_with_nothing_lost_or_twice(
    make_user: Any, context: BrowserContext, kind: str
) -> None:
    alice = make_user("alice")
    server = Server(kind=kind, **SERVER_ENV).start()
    try:
        context.add_cookies(
            [{"name": "sessionid", "value": session_cookie(alice), "url": server.url}]
        )
        page = context.new_page()
        requests: list[Request] = []
        page.on("request", lambda r: requests.append(r) if "/beacon/events/" in r.url else None)
        page.goto(f"{server.url}/beacon/healthz")
        page.evaluate(FOLLOW, f"/beacon/events/?stream={user_stream(alice)}")
        page.wait_for_function("() => window.subscribed.length === 1", timeout=WAIT_MS)

        def published_and_seen(first: int, last: int) -> None:
            for n in range(first, last + 1):
                notify(alice, f"n{n}")
            # A function, not an expression: the page's CSP forbids eval.
            page.wait_for_function(f"() => window.seqs.length >= {last}", timeout=WAIT_MS)

        published_and_seen(1, 10)
        server.kill()
        for n in range(11, 21):  # written while no server runs: only a resume brings them
            notify(alice, f"n{n}")
        server = Server(kind=kind, port=server.port, **SERVER_ENV).start()
        published_and_seen(21, 30)

        assert page.evaluate("() => window.seqs") == list(range(1, 31))
        assert page.evaluate("() => window.opens") >= 2
        ids = page.evaluate("() => window.ids")
        assert ids[-1].startswith(f"{user_stream(alice)}@") and ids[-1].endswith(":30")
        # The browser's own reconnects carried the id of the last event it had.
        sent = [r.all_headers().get("last-event-id") for r in requests]
        assert sent[0] is None
        resumes = [last_id for last_id in sent[1:] if last_id]
        assert resumes and resumes[0].endswith(":10")
        recovered = page.evaluate("() => window.subscribed.map((s) => s.recovered)")
        assert recovered[-1] is True
    finally:
        server.stop()
