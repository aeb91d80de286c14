"""Regressions of two core races that the browser tests brought to light.

Not browser tests: they drive the core directly, deterministically. At page level the
first showed as a second tab that subscribed at the wrong moment leaving the first
tab's badge at 0; the second as a notification missing from a freshly loaded list.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from beacon import eventlog, notify
from beacon.fanout.hub import Hub

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """A socket as the hub sees it: remembers the seqs offered to it."""

    def __init__(self) -> None:
        self.seqs: list[int | None] = []

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        self.seqs.append(seq)


async def test_a_second_subscriber_does_not_hide_missed_events_from_the_first(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    stream = f"user:{alice.pk}"
    hub = Hub(asyncio.get_running_loop())  # not registered: only its log watcher feeds it
    first, second = Recorder(), Recorder()
    await hub.add(stream, first, 0)

    # Another process publishes; before this hub's log watcher polls, a second tab
    # subscribes at the stream's new position (and gets seqs 1-2 from its own replay).
    await db_call(notify, alice, "one")
    await db_call(notify, alice, "two")
    position = await db_call(eventlog.position, stream)
    await hub.add(stream, second, position.last_seq)

    await hub.poll_log()
    assert first.seqs == [1, 2]


def test_the_notification_list_and_its_seq_agree(
    make_user: Any, client: Any, monkeypatch: Any
) -> None:
    alice = make_user("alice")
    client.force_login(alice)
    read_position = eventlog.position

    def position_after_a_commit(stream: str, **kwargs: Any) -> Any:
        notify(alice, "committed between the two reads")
        return read_position(stream, **kwargs)

    monkeypatch.setattr(eventlog, "position", position_after_a_commit)
    body = client.get("/beacon/notifications/").json()
    assert [item["seq"] for item in body["items"]] == list(range(body["seq"], 0, -1))
