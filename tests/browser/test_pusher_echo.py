"""Laravel Echo and pusher-js, the npm packages' browser builds served as static files,
in headless Chromium against Daphne: the demo's Echo page for two people — a presence
channel, whispers (typing), and a private channel fed by ``beacon.publish`` and by
``beacon.pusher.server.trigger`` with Echo's ``X-Socket-Id`` (``toOthers``) — with
pusher-js's own ajax authorizer posting to ``/broadcasting/auth`` with Django's CSRF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from beacon import publish

from ..servers import ROOT, Server
from .conftest import WAIT_MS, PageErrors, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VENDOR = ROOT / "demo" / "static" / "demo" / "vendor"
PACKAGES = ROOT / "tests" / "js" / "pusher" / "node_modules"


def echo_page(context: BrowserContext, server: Server, errors: PageErrors) -> Page:
    page = errors.watch(context.new_page())
    page.goto(f"{server.url}/pusher/demo/")
    state = page.locator("#echo-state")
    expect(state).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    return page


def test_echo_presence_whispers_and_private_notes(
    server: Server,
    make_user: Callable[[str], Any],
    new_context: Callable[[], BrowserContext],
    page_errors: PageErrors,
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    a = echo_page(signed_in(new_context(), server, alice), server, page_errors)
    expect(a.locator("#members li")).to_have_text(["alice"], timeout=WAIT_MS)
    b = echo_page(signed_in(new_context(), server, bob), server, page_errors)
    expect(b.locator("#members li")).to_have_text(["alice", "bob"], timeout=WAIT_MS)
    expect(a.locator("#members li")).to_have_text(["alice", "bob"], timeout=WAIT_MS)
    # A whisper: client-typing from bob's page, shown on alice's, not on bob's own.
    b.locator("#whisper").press_sequentially("hi")
    expect(a.locator("#typing")).to_have_text("bob is typing…", timeout=WAIT_MS)
    expect(b.locator("#typing")).to_have_text("")
    # The private channel: a note posted through the page goes to the others only (the
    # view passes Echo's X-Socket-Id on); then one published by this process reaches all.
    a.locator("#note").fill("first")
    a.locator("#note-form button").click()
    expect(b.locator("#notes li")).to_have_text(["alice: first"], timeout=WAIT_MS)
    publish("pusher:private-demo.notes", "note", {"text": "second", "author": "server"})
    expect(b.locator("#notes li")).to_have_text(
        ["alice: first", "server: second"], timeout=WAIT_MS
    )
    # Alice's page showed her own note itself, and got it from the server not at all.
    expect(a.locator("#notes li")).to_have_text(
        ["alice: first", "server: second"], timeout=WAIT_MS
    )
    # Bob leaves: alice sees him go.
    b.context.close()
    expect(a.locator("#members li")).to_have_text(["alice"], timeout=WAIT_MS)


def test_an_anonymous_page_cannot_join(
    server: Server, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    response = page.request.post(
        f"{server.url}/broadcasting/auth",
        form={"socket_id": "1.2", "channel_name": "private-demo.notes"},
    )
    assert response.status == 403


@pytest.mark.parametrize(
    ("vendored", "package"),
    [
        ("pusher.min.js", "pusher-js/dist/web/pusher.min.js"),
        ("echo.iife.js", "laravel-echo/dist/echo.iife.js"),
    ],
)
def test_the_demo_serves_the_packages_unchanged(vendored: str, package: str) -> None:
    installed = PACKAGES / package
    assert installed.exists(), "run `make js-deps`"
    assert Path(VENDOR / vendored).read_bytes() == installed.read_bytes(), "run `make vendor-js`"
