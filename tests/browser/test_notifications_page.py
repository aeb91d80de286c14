"""What a person sees on the demo's notifications page, in headless Chromium against Daphne.

Notifications are sent from other processes (``manage.py beacon_notify``), by another
signed-in person through the demo's forms, and while the server is down.
"""

from __future__ import annotations

import io
import re
import subprocess
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from beacon import notify

from ..servers import OUTPUT, Server, manage
from .conftest import SERVER_ENV, WAIT_MS, open_home, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = OUTPUT / "screenshots" / "notifications.png"


def beacon_notify(*args: str) -> None:
    """``manage.py beacon_notify`` in a process of its own (stderr shown if it fails)."""
    try:
        manage("beacon_notify", *args)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"beacon_notify {args} failed:\n{exc.stderr}")


def messages(page: Page) -> list[str]:
    return page.locator("#notification-list .notification-message").all_text_contents()


def seqs(page: Page) -> list[str]:
    return [
        item.get_attribute("data-seq") or ""
        for item in page.locator("#notification-list > li").all()
    ]


def test_a_notification_from_another_process_lights_the_badge(
    make_user: Any, server: Server, new_context: Any, page_errors: Any
) -> None:
    make_user("alice")
    page = page_errors.watch(new_context().new_page())
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("#login-form button[type=submit]")
    open_home(page, server)
    expect(page.locator("#unread-count")).to_have_text("0")

    beacon_notify("alice", "Your export is ready", "--url", "/exports/12/")

    expect(page.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)
    page.click("#bell")
    item = page.locator("#notification-list > li")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-seq", "1")
    expect(item.locator(".notification-message")).to_have_text("Your export is ready")
    expect(item.locator("a.notification")).to_have_attribute("href", "/exports/12/")


def test_the_page_catches_up_after_the_server_is_killed_and_restarted(
    make_user: Any, home_of: Any
) -> None:
    alice = make_user("alice")
    server = Server(**SERVER_ENV).start()
    try:
        page = home_of(alice, server)
        beacon_notify("alice", "before the restart")
        expect(page.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)

        server.kill()
        expect(page.locator("#connection")).not_to_have_attribute(
            "data-state", "connected", timeout=WAIT_MS
        )
        for n in (1, 2, 3):
            beacon_notify("alice", f"sent while down #{n}")
        server = Server(port=server.port, **SERVER_ENV).start()

        # Nobody touches the page: it reconnects and resumes by itself (after a backoff
        # of up to 20 s, hence the longer wait).
        expect(page.locator("#unread-count")).to_have_text("4", timeout=2 * WAIT_MS)
        expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        page.click("#bell")
        expect(page.locator("#notification-list > li")).to_have_count(4)
        assert seqs(page) == ["4", "3", "2", "1"]
        assert messages(page) == [
            "sent while down #3",
            "sent while down #2",
            "sent while down #1",
            "before the restart",
        ]
    finally:
        server.stop()


def test_when_history_no_longer_reaches_back_the_page_reloads_its_list(
    make_user: Any, home_of: Any
) -> None:
    from django.test import override_settings

    from beacon.eventlog import position, prune

    alice = make_user("alice")
    server = Server(**SERVER_ENV).start()
    try:
        page = home_of(alice, server)
        notify(alice, "seen before the restart")
        expect(page.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)
        server.kill()
        expect(page.locator("#connection")).not_to_have_attribute(
            "data-state", "connected", timeout=WAIT_MS
        )
        for n in (1, 2, 3):
            notify(alice, f"sent while down #{n}")
        with override_settings(BEACON={"RETENTION_EVENTS": 1}):
            prune()
        # Seqs 1-3 are gone from the log: the page cannot resume from seq 1.
        assert position(f"user:{alice.pk}").first_seq == 4
        server = Server(port=server.port, **SERVER_ENV).start()

        # The server answers the resume with recovered: false; the page reloads over HTTP.
        page.click("#bell")
        item = page.locator("#notification-list > li")
        expect(item).to_have_attribute("data-seq", "4", timeout=2 * WAIT_MS)
        expect(item).to_have_count(1)
        expect(item.locator(".notification-message")).to_have_text("sent while down #3")
        expect(page.locator("#unread-count")).to_have_text("1")
    finally:
        server.stop()


def test_mark_all_read_in_one_tab_clears_the_badge_in_the_other(
    make_user: Any, server: Server, new_context: Any, page_errors: Any
) -> None:
    alice = make_user("alice")
    context = signed_in(new_context(), server, alice)
    first = open_home(page_errors.watch(context.new_page()), server)
    second = open_home(page_errors.watch(context.new_page()), server)
    notify(alice, "one")  # from this process: the server's log watcher brings them
    notify(alice, "two")
    for tab in (first, second):
        expect(tab.locator("#unread-count")).to_have_text("2", timeout=WAIT_MS)

    first.click("#bell")
    first.click("#notification-list > li[data-seq='2'] .notification")  # read one
    expect(second.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)
    first.click("#mark-all-read")

    expect(second.locator("#unread-count")).to_have_text("0", timeout=WAIT_MS)
    expect(first.locator("#unread-count")).to_have_text("0", timeout=WAIT_MS)
    second.click("#bell")
    expect(second.locator("#notification-list .notification.unread")).to_have_count(0)
    expect(second.locator("#notification-list > li")).to_have_count(2)


def test_notification_text_is_shown_as_text_and_never_run(
    make_user: Any, server: Server, home_of: Any
) -> None:
    alice = make_user("alice")
    page = home_of(alice, server)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    payload = "<img src=x onerror=alert(1)>"

    notify(alice, payload, url="javascript:alert(2)")

    expect(page.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)
    page.click("#bell")
    expect(page.locator("#notification-list .notification-message")).to_have_text(payload)
    assert page.locator("#notification-list img, .toast p img").count() == 0
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('[href^="javascript:"]').count() == 0
    page.reload()  # the same text from the HTTP list
    open_home(page, server)
    page.click("#bell")
    expect(page.locator("#notification-list .notification-message")).to_have_text(payload)
    assert page.locator('img[src="x"]').count() == 0
    assert dialogs == []


def test_a_comment_and_the_notify_form_reach_the_other_person_live(
    server: Server, home_of: Any
) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from demo.models import Post

    call_command("demo_users", stdout=io.StringIO())  # the demo's users and posts
    alice, bob = (get_user_model().objects.get(username=name) for name in ("alice", "bob"))
    post = Post.objects.get(author=alice, title="Launch checklist for Friday")
    alice_page, bob_page = home_of(alice, server), home_of(bob, server)

    bob_page.goto(f"{server.url}/posts/{post.pk}/")
    bob_page.fill("#comment-form textarea", "Looks good to me!")
    bob_page.click("#comment-form button[type=submit]")
    expect(bob_page.locator(".flash")).to_contain_text("alice was notified")

    expect(alice_page.locator("#unread-count")).to_have_text("1", timeout=WAIT_MS)

    open_home(bob_page, server)
    bob_page.select_option("#notify-form select", label="alice")
    bob_page.fill("#notify-form input[name=message]", "Lunch at noon?")
    bob_page.click("#notify-form button[type=submit]")
    expect(bob_page.locator(".flash")).to_contain_text("Sent to alice")

    expect(alice_page.locator("#unread-count")).to_have_text("2", timeout=WAIT_MS)
    alice_page.click("#bell")
    assert messages(alice_page) == [
        "Lunch at noon?",
        "bob commented on “Launch checklist for Friday”",
    ]
    expect(alice_page.locator("#notification-list > li").first).to_contain_text("from bob")
    comment_link = alice_page.locator("#notification-list > li").nth(1).locator("a")
    expect(comment_link).to_have_attribute("href", f"/posts/{post.pk}/")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    alice_page.screenshot(path=str(SCREENSHOT))
