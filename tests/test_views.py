"""The HTTP JSON views. (The list-and-seq race below was found by the browser tests.)"""

from __future__ import annotations

from typing import Any

import pytest

from beacon import eventlog, notify

pytestmark = pytest.mark.django_db(transaction=True)


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
