"""Core bugs found while building the browser client, pinned until the core is fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beacon import mark_read, notify

pytestmark = pytest.mark.django_db


@pytest.mark.xfail(
    strict=True,
    reason=(
        "core bug: readstate.mark_read(seq=N) stores {'seq': N} as the read event's data and "
        "protocol.event_frame lets data overwrite the frame's own 'seq', so the frame claims "
        "seq N instead of its stream seq; clients that drop seq <= last lose it"
    ),
)
def test_a_read_event_for_one_notification_carries_its_own_stream_seq(make_user: Any) -> None:
    alice = make_user("alice")
    notify(alice, "first")
    notify(alice, "second")
    event = mark_read(alice.pk, seq=1)
    assert event is not None
    assert json.loads(event.frame)["seq"] == event.seq == 3
