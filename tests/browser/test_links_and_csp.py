"""Links in notifications stay on the site, and the demo's pages work under its CSP.

In headless Chromium against Daphne: a notification's ``url`` is data, so only a URL
that the browser itself resolves to the page's own origin may become a link.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from beacon import notify

from .conftest import WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each starts with one "/" and is read by the browser as another site (or as script).
OFF_SITE = [
    "/\\evil.example/phish",
    "/\t/evil.example/phish",
    "/\n/evil.example/phish",
    "\\/evil.example/phish",
    " //evil.example/phish",
    "//evil.example/phish",
    "https://evil.example/phish",
    "javascript:alert(1)",
]


def row(page: Page, message: str) -> Any:
    return page.locator("#notification-list > li").filter(has_text=message)


def test_only_urls_of_the_site_itself_become_links(
    make_user: Any, server: Any, home_of: Any
) -> None:
    alice = make_user("alice")
    page = home_of(alice, server)
    for n, url in enumerate(OFF_SITE):
        notify(alice, f"off-site {n}", url=url)
    notify(alice, "on-site path", url="/exports/12/?tab=1#top")
    notify(alice, "on-site absolute", url=f"{server.url}/posts/3/")
    expect(page.locator("#unread-count")).to_have_text(str(len(OFF_SITE) + 2), timeout=WAIT_MS)
    page.click("#bell")

    for n, url in enumerate(OFF_SITE):
        item = row(page, f"off-site {n}")
        expect(item).to_have_count(1)
        assert item.locator("a").count() == 0, f"{url!r} became a link"
    expect(row(page, "on-site path").locator("a.notification")).to_have_attribute(
        "href", "/exports/12/?tab=1#top"
    )
    expect(row(page, "on-site absolute").locator("a.notification")).to_have_attribute(
        "href", "/posts/3/"
    )
    # Whatever the list links to is on this origin, as the browser resolves it.
    assert page.evaluate(
        """() => [...document.querySelectorAll('#notification-list a')]
            .every((a) => new URL(a.href).origin === location.origin)"""
    )


def test_every_demo_page_sends_a_csp_and_works_under_it(
    make_user: Any, server: Any, new_context: Any, page_errors: Any
) -> None:
    from beacon.chat.models import Room

    from .conftest import open_home, signed_in

    alice = make_user("alice")
    room = Room.objects.create(name="team", is_private=True, created_by=alice)
    room.join(alice)
    page = page_errors.watch(signed_in(new_context(), server, alice).new_page())
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )

    response = page.goto(f"{server.url}/accounts/login/")
    assert response is not None
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self' 'nonce-" in policy and "object-src 'none'" in policy

    open_home(page, server)  # the import map (inline, with the nonce) ran: the page is live
    home_policy = page.evaluate("() => document.querySelector('script[type=importmap]').nonce")
    assert home_policy, "the import map carries the response's nonce"
    page.goto(f"{server.url}/rooms/{room.pk}/")
    expect(page.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    page.goto(f"{server.url}/rooms/")
    expect(page.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    # An injected inline script is refused: the policy is in force, not just sent.
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.injected = true'; document.body.append(s); }"""
    )
    assert page.evaluate("() => window.injected === undefined")
    assert any("inline script" in v for v in violations)
    violations = [v for v in violations if "inline script" not in v]
    assert violations == []


def test_the_home_page_tip_works_as_written(make_user: Any, server: Any, home_of: Any) -> None:
    """"Things to try" tells a newcomer a command to run in the repository: run it so."""
    import shlex
    import subprocess

    from ..servers import ROOT, server_env

    alice = make_user("alice")
    page = home_of(alice, server)
    command = shlex.split(page.locator("#tip-notify").inner_text())
    assert command[:3] == [".venv/bin/python", "manage.py", "beacon_notify"]
    subprocess.run(command, cwd=ROOT, env=server_env(), check=True, timeout=60)
    expect(page.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)
    page.click("#bell")
    expect(page.locator(".notification-message")).to_have_text("Hello")
