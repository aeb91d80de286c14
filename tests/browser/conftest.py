"""Browser fixtures: Debian's Chromium driven by Playwright's sync API, a Daphne process.

Playwright's sync API runs its own event loop, so these tests are plain sync functions
(``django_db(transaction=True)``: the server process must see what the test commits).
The browser and one server live for a module; a test that kills its server starts its
own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    WebSocket,
    expect,
    sync_playwright,
)

from ..servers import OUTPUT, Server, running, session_cookie

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
# The log watcher brings events published by other processes (``manage beacon_notify``)
# to the page; a short poll keeps the tests quick. The server process must not inherit
# this module's async-unsafe switch.
SERVER_ENV = {"BEACON_LOG_POLL_SECONDS": "0.2", "DJANGO_ALLOW_ASYNC_UNSAFE": ""}
# Generous: the suite may run on a busy machine. Expectations return as soon as they hold.
WAIT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module", autouse=True)
def async_unsafe_orm() -> Iterator[None]:
    """The ORM calls of these tests run while Playwright's loop exists in this thread."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    tmp = OUTPUT / "chromium-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[Server]:
    with running(**SERVER_ENV) as server:
        yield server


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Open browser contexts (one per person); all are closed after the test."""
    contexts: list[BrowserContext] = []

    def new() -> BrowserContext:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        return context

    yield new
    for context in contexts:
        context.close()


class PageErrors:
    """Uncaught exceptions in the pages a test opened: there must be none.

    Also keeps a log of each page's WebSocket frames and console messages, printed at
    teardown, so that pytest shows it when a test fails.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.log: list[str] = []
        self.pages = 0
        self.started = time.monotonic()

    def note(self, page: str, text: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:7.2f} {page} {text[:300]}")

    def watch(self, page: Page) -> Page:
        self.pages += 1
        name = f"page{self.pages}"
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.note(name, f"console: {message.text}"))
        page.on("websocket", lambda ws: self._watch_socket(name, ws))
        return page

    def _watch_socket(self, name: str, ws: WebSocket) -> None:
        self.note(name, f"socket {ws.url}")
        ws.on("framesent", lambda payload: self.note(name, f"> {payload}"))
        ws.on("framereceived", lambda payload: self.note(name, f"< {payload}"))
        ws.on("close", lambda _: self.note(name, "socket closed"))


@pytest.fixture
def page_errors() -> Iterator[PageErrors]:
    watcher = PageErrors()
    yield watcher
    print("\n".join(watcher.log))
    assert watcher.errors == []


def signed_in(context: BrowserContext, server: Server, user: Any) -> BrowserContext:
    """Give a context the session cookie of ``user`` (quicker than the login form)."""
    context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": server.url}])
    return context


def open_home(page: Page, server: Server) -> Page:
    """Go to the notifications page and wait until it follows the user's stream."""
    page.goto(f"{server.url}/")
    expect(page.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    expect(page.locator("#bell-root")).to_have_attribute("data-live", "true", timeout=WAIT_MS)
    return page


@pytest.fixture
def home_of(
    new_context: Callable[[], BrowserContext], page_errors: PageErrors
) -> Callable[[Any, Server], Page]:
    """The live notifications page of a user, in a browser context of their own."""

    def open_for(user: Any, server: Server) -> Page:
        page = signed_in(new_context(), server, user).new_page()
        return open_home(page_errors.watch(page), server)

    return open_for
