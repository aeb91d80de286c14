"""Core bugs found while building the browser client, pinned now that they are fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beacon import mark_read, notify

pytestmark = pytest.mark.django_db


def test_a_read_event_for_one_notification_carries_its_own_stream_seq(make_user: Any) -> None:
    alice = make_user("alice")
    notify(alice, "first")
    notify(alice, "second")
    event = mark_read(alice.pk, seq=1)
    assert event is not None
    frame = json.loads(event.frame)
    assert frame["seq"] == event.seq == 3 and frame["read_seq"] == 1
