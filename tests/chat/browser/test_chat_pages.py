"""What alice and bob see on the demo's chat pages, in headless Chromium against Daphne."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from beacon.chat.models import Membership, Room

from ...servers import OUTPUT, Server

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect

from ...browser.conftest import SERVER_ENV, WAIT_MS, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = OUTPUT / "screenshots"


def make_room(name: str, *members: Any, private: bool = True) -> Room:
    room = Room.objects.create(name=name, is_private=private)
    for user in members:
        Membership.objects.create(room=room, user=user)
    return room


def open_room(page: Page, server: Server, room: Room) -> Page:
    page.goto(f"{server.url}/rooms/{room.pk}/")
    expect(page.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    return page


def texts(page: Page) -> Any:
    return page.locator("#messages .message-text")


def send(page: Page, text: str) -> None:
    page.locator("#message-input").fill(text)
    page.locator("#message-input").press("Enter")


def test_alice_and_bob_exchange_messages_and_see_each_other_typing(
    make_user: Any, server: Server, new_context: Any, page_errors: Any
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room("team", alice, bob)
    pa = open_room(
        page_errors.watch(signed_in(new_context(), server, alice).new_page()), server, room
    )
    pb = open_room(
        page_errors.watch(signed_in(new_context(), server, bob).new_page()), server, room
    )
    expect(pa.locator("#presence .person-name")).to_have_text(
        ["alice (you)", "bob"], timeout=WAIT_MS
    )
    expect(pb.locator("#presence .person-name")).to_have_text(["alice", "bob (you)"])

    pa.locator("#message-input").press_sequentially("Hi bob <b>", delay=20)
    expect(pb.locator("#typing")).to_have_text("alice is typing…", timeout=WAIT_MS)
    pa.locator("#message-input").press("Enter")
    expect(texts(pb)).to_have_text(["Hi bob <b>"], timeout=WAIT_MS)  # text, not markup
    expect(pb.locator("#messages .author")).to_have_text(["alice"])
    expect(pb.locator("#typing")).to_have_text("")  # her message ends her typing

    send(pb, "Hi alice")
    expect(texts(pa)).to_have_text(["Hi bob <b>", "Hi alice"], timeout=WAIT_MS)
    expect(pa.locator("#messages .author")).to_have_text(["alice (you)", "bob"])
    expect(pa.locator("#seen")).to_have_text("Seen by bob", timeout=WAIT_MS)
    expect(pa.locator("#messages .pending")).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pa.screenshot(path=str(SCREENSHOTS / "chat-room.png"))

    pb.close()
    expect(pa.locator("#presence .person-name")).to_have_text(["alice (you)"], timeout=WAIT_MS)


def test_blank_messages_are_not_sent(
    make_user: Any, server: Server, new_context: Any, page_errors: Any
) -> None:
    alice = make_user("alice")
    room = make_room("notes", alice)
    page = open_room(
        page_errors.watch(signed_in(new_context(), server, alice).new_page()), server, room
    )
    send(page, "   ")
    expect(page.locator("#composer-error")).to_have_text("Write something first.")
    expect(page.locator("#messages .message")).to_have_count(0)


def test_the_room_list_counts_unread_messages_live(
    make_user: Any, server: Server, new_context: Any, page_errors: Any
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room("team", alice, bob)
    listing = page_errors.watch(signed_in(new_context(), server, bob).new_page())
    listing.goto(f"{server.url}/rooms/")
    expect(listing.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    badge = listing.locator(f'#room-list li[data-room="{room.pk}"] .unread-number')
    expect(badge).to_have_text("0")

    pa = open_room(
        page_errors.watch(signed_in(new_context(), server, alice).new_page()), server, room
    )
    send(pa, "one")
    send(pa, "two")
    expect(badge).to_have_text("2", timeout=WAIT_MS)

    # Bob reads the room in another tab: the list follows, and the divider marks what was new.
    reader = open_room(page_errors.watch(listing.context.new_page()), server, room)
    expect(reader.locator("#messages .divider")).to_have_count(1, timeout=WAIT_MS)
    expect(reader.locator("#messages .divider + .message .message-text")).to_have_text("one")
    expect(badge).to_have_text("0", timeout=WAIT_MS)


def test_after_bobs_server_restarts_his_page_shows_what_alice_sent_meanwhile_once(
    make_user: Any, new_context: Any, page_errors: Any
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room("team", alice, bob)
    # Two processes sharing Redis (a prefix of this test's own), like a deployment.
    env = {
        **SERVER_ENV,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "BEACON_REDIS_PREFIX": f"chat-browser-{uuid.uuid4().hex[:10]}",
    }
    alices, bobs = Server(**env).start(), Server(**env).start()
    try:
        pa = page_errors.watch(signed_in(new_context(), alices, alice).new_page())
        pb = page_errors.watch(signed_in(new_context(), bobs, bob).new_page())
        open_room(pa, alices, room)
        open_room(pb, bobs, room)
        send(pa, "before the restart")
        expect(texts(pb)).to_have_text(["before the restart"], timeout=WAIT_MS)

        bobs.kill()
        expect(pb.locator("#connection")).not_to_have_attribute(
            "data-state", "connected", timeout=WAIT_MS
        )
        for n in (1, 2, 3):
            send(pa, f"while bob was away #{n}")
        expect(pa.locator("#messages .pending")).to_have_count(0, timeout=WAIT_MS)
        send(pb, "bob wrote this offline")  # queued, sent once the server is back
        expect(pb.locator("#messages .pending")).to_have_count(1)

        bobs = Server(port=bobs.port, **env).start()
        expected = [
            "before the restart",
            "while bob was away #1",
            "while bob was away #2",
            "while bob was away #3",
            "bob wrote this offline",
        ]
        expect(texts(pb)).to_have_text(expected, timeout=WAIT_MS)
        expect(pb.locator("#messages .pending")).to_have_count(0)
        expect(texts(pa)).to_have_text(expected, timeout=WAIT_MS)
        seqs = [li.get_attribute("data-seq") for li in pb.locator("#messages .message").all()]
        assert seqs == ["1", "2", "3", "4", "5"]
    finally:
        alices.stop()
        bobs.stop()


def test_older_messages_page_in_when_scrolling_up(
    make_user: Any, server: Server, new_context: Any, page_errors: Any
) -> None:
    from beacon.chat.messages import post_message

    alice = make_user("alice")
    room = make_room("archive", alice)
    for n in range(1, 61):
        post_message(room, alice, f"old message {n}")
    page = open_room(
        page_errors.watch(signed_in(new_context(), server, alice).new_page()), server, room
    )
    expect(texts(page)).to_have_count(50, timeout=WAIT_MS)  # the newest page
    expect(texts(page).first).to_have_text("old message 11")
    page.locator("#scroller").evaluate("node => { node.scrollTop = 0; }")
    expect(texts(page)).to_have_count(60, timeout=WAIT_MS)
    expect(texts(page).first).to_have_text("old message 1")
    expect(page.locator("#history-start")).to_be_visible()
    seqs = [
        int(li.get_attribute("data-seq") or 0) for li in page.locator("#messages .message").all()
    ]
    assert seqs == list(range(1, 61))
