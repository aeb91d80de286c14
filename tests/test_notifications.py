"""Notifications: the user's stream, its unread count, marking read, the user policy."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from beacon import mark_read, notify, unread_count
from beacon.fanout import relay
from beacon.notifications import UserStreamPolicy
from beacon.streams import policy_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The frames handed to the relay after commit, parsed."""
    frames: list[dict[str, Any]] = []
    monkeypatch.setattr(
        relay, "deliver", lambda items: frames.extend(json.loads(f) for *_, f in items)
    )
    return frames


def test_the_app_registers_the_user_namespace() -> None:
    policy, key = policy_for("user:12")
    assert isinstance(policy, UserStreamPolicy) and key == "12"


def test_each_notification_carries_the_unread_count_after_it(make_user: Any, sent: list) -> None:
    alice = make_user("alice")
    notify(alice, "one")
    notify(alice.pk, "two", url="/x")
    assert [(f["message"], f["unread"]) for f in sent] == [("one", 1), ("two", 2)]
    assert sent[1]["url"] == "/x" and unread_count(alice.pk) == 2


def test_mark_read_needs_exactly_one_of_seq_and_up_to(make_user: Any) -> None:
    alice = make_user("alice")
    with pytest.raises(ValueError):
        mark_read(alice.pk)
    with pytest.raises(ValueError):
        mark_read(alice.pk, seq=1, up_to=1)


def test_marking_read_what_is_not_unread_sends_no_event(make_user: Any, sent: list) -> None:
    alice = make_user("alice")
    notify(alice, "one")
    assert mark_read(alice.pk, seq=1) is not None
    assert mark_read(alice.pk, seq=1) is None
    assert mark_read(alice.pk, up_to=1) is None
    assert [f["type"] for f in sent] == ["notification", "read"]
    assert sent[1]["read_seq"] == 1 and sent[1]["unread"] == 0


def test_marking_read_up_to_a_seq_reads_everything_before_it(make_user: Any, sent: list) -> None:
    alice = make_user("alice")
    for message in ("one", "two", "three"):
        notify(alice, message)
    event = mark_read(alice.pk, up_to=2)
    assert event is not None and event.seq == 4 and unread_count(alice.pk) == 1
    assert sent[-1]["up_to"] == 2 and sent[-1]["unread"] == 1


def test_the_user_policy_sends_the_unread_count_and_marks_read_for_the_user(
    make_user: Any,
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    notify(alice, "one")
    policy = UserStreamPolicy()
    assert policy.can_subscribe(alice, str(alice.pk))
    assert not policy.can_subscribe(bob, str(alice.pk))
    assert not policy.can_subscribe(SimpleNamespace(is_authenticated=False, pk=None), "None")
    assert policy.subscribe_state(alice, str(alice.pk)) == {"unread": 1}
    policy.mark_read(alice, str(alice.pk), seq=None, up_to=1)
    assert unread_count(alice.pk) == 0


def test_a_subscribe_reads_the_unread_count_with_the_position(
    make_user: Any, django_assert_num_queries: Any
) -> None:
    from beacon.doors.websocket import _prepare_subscription

    alice = make_user("alice")
    for message in ("one", "two"):
        notify(alice, message)
    stream, key = f"user:{alice.pk}", str(alice.pk)
    with django_assert_num_queries(1):
        position, state, resume, replay = _prepare_subscription(
            UserStreamPolicy(), key, alice, stream, None, None
        )
    assert (position.last_seq, position.unread, state, replay) == (2, 2, {"unread": 2}, None)

    class Counted(UserStreamPolicy):  # a subclass's own subscribe_state is still asked
        def subscribe_state(self, user: Any, key: str) -> dict[str, Any]:
            return {"unread": unread_count(user.pk), "mine": True}

    _, state, _, _ = _prepare_subscription(Counted(), key, alice, stream, None, None)
    assert state == {"unread": 2, "mine": True}
    # A resume reads its replay in the same call.
    with django_assert_num_queries(2):
        _, _, resume, replay = _prepare_subscription(
            UserStreamPolicy(), key, alice, stream, position.epoch, 1
        )
    assert resume == (1, True, None) and [seq for seq, _ in replay] == [2]
