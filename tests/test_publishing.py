"""Publishing: seqs, transactions, read state, the public API (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

import beacon
import beacon.chat
from beacon import eventlog, mark_read, notify, notify_many, publish, send_notification
from beacon.exceptions import PublishError
from beacon.fanout import relay as transport
from beacon.models import Event, Notification, Stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None, str]]:
    """What reaches the transport (i.e. what would be sent live), in order."""
    sent: list[tuple[str, int | None, str]] = []
    monkeypatch.setattr(transport, "deliver", lambda items: sent.extend(items))
    return sent


def test_public_api_is_pinned() -> None:
    assert sorted(beacon.__all__) == [
        "BeaconError",
        "Forbidden",
        "ProtocolError",
        "PublishError",
        "StreamError",
        "StreamPolicy",
        "anotify",
        "anotify_many",
        "apublish",
        "apublish_ephemeral",
        "arevoke",
        "mark_read",
        "notify",
        "notify_many",
        "publish",
        "publish_ephemeral",
        "register",
        "revoke",
        "send_notification",
        "unread_count",
        "user_stream",
    ]
    for name in beacon.__all__:
        assert callable(getattr(beacon, name))
    assert sorted(beacon.chat.__all__) == [
        "InvalidMessage",
        "Membership",
        "Room",
        "RoomListPolicy",
        "RoomPolicy",
        "apost_message",
        "post_message",
        "room_stream",
    ]
    for name in beacon.chat.__all__:
        assert callable(getattr(beacon.chat, name))


def test_seqs_count_up_per_stream_without_gaps(delivered: list) -> None:
    seqs = [publish("news:1", "item", {"n": i}).seq for i in range(3)]
    other = publish("news:2", "item", {}).seq
    assert seqs == [1, 2, 3] and other == 1
    assert [seq for _, seq, _ in delivered] == [1, 2, 3, 1]


def test_delivery_waits_for_commit_and_a_rollback_delivers_nothing(
    make_user: Any, delivered: list
) -> None:
    alice = make_user("alice")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        notify(alice, "never happened")
        assert delivered == []  # not before commit
        raise Boom
    assert delivered == []
    assert not Notification.objects.exists()
    # The rolled-back seq is given back: the next notification is seq 1.
    assert notify(alice, "real").seq == 1
    assert [seq for _, seq, _ in delivered] == [1]


def test_delivery_happens_once_the_outer_transaction_commits(
    make_user: Any, delivered: list
) -> None:
    alice = make_user("alice")
    with transaction.atomic():
        notify(alice, "one")
        notify(alice, "two")
        assert delivered == []
    assert [json.loads(frame)["message"] for _, _, frame in delivered] == ["one", "two"]


def test_the_stored_frame_is_the_delivered_frame(make_user: Any, delivered: list) -> None:
    alice = make_user("alice")
    event = notify(alice, "Your export is ready", url="/exports/12/")
    assert delivered == [(f"user:{alice.pk}", 1, event.frame)]
    assert Event.objects.get(seq=1).frame == event.frame
    frame = json.loads(event.frame)
    assert frame["type"] == "notification" and frame["message"] == "Your export is ready"
    assert frame["url"] == "/exports/12/" and frame["unread"] == 1
    assert frame["epoch"] == Stream.objects.get(name=f"user:{alice.pk}").epoch


def test_the_guides_send_notification_keeps_working(make_user: Any, delivered: list) -> None:
    alice = make_user("alice")
    send_notification(alice.pk, "hello")
    assert json.loads(delivered[0][2])["message"] == "hello"


def test_notify_many_notifies_each_user_in_one_transaction(make_user: Any, delivered: list) -> None:
    users = [make_user(name) for name in ("alice", "bob", "carol")]
    notify(users[1], "bob has one already")
    delivered.clear()
    events = notify_many(users, "maintenance at noon", url="/status/")
    assert sorted(e.stream for e in events) == sorted(f"user:{u.pk}" for u in users)
    assert len(delivered) == 3
    frames = {e.stream: json.loads(e.frame) for e in events}
    bob = frames[f"user:{users[1].pk}"]
    assert (bob["seq"], bob["unread"], bob["message"], bob["url"]) == (
        2,
        2,
        "maintenance at noon",
        "/status/",
    )
    alice = frames[f"user:{users[0].pk}"]
    assert (alice["seq"], alice["unread"]) == (1, 1)
    assert Notification.objects.filter(user=users[1]).count() == 2
    assert (
        Event.objects.get(seq=2, stream__name=f"user:{users[1].pk}").frame
        == events[[e.stream for e in events].index(f"user:{users[1].pk}")].frame
    )


def test_notify_many_rolls_back_with_the_callers_transaction(
    make_user: Any, delivered: list
) -> None:
    users = [make_user(name) for name in ("alice", "bob")]
    with pytest.raises(RuntimeError), transaction.atomic():
        notify_many(users, "never")
        raise RuntimeError
    assert delivered == [] and not Event.objects.exists()
    assert [e.seq for e in notify_many(users, "real")] == [1, 1]


def test_unread_counts_and_read_events(make_user: Any, delivered: list) -> None:
    alice = make_user("alice")
    for i in range(3):
        notify(alice, f"n{i}")
    assert beacon.unread_count(alice.pk) == 3
    read = mark_read(alice.pk, seq=2)
    assert read is not None and read.seq == 4
    assert json.loads(read.frame) | {"ts": 0, "epoch": ""} == {
        "type": "read",
        "stream": f"user:{alice.pk}",
        "seq": 4,
        "epoch": "",
        "ts": 0,
        "read_seq": 2,
        "unread": 2,
    }
    everything = mark_read(alice.pk, up_to=3)
    assert everything is not None and json.loads(everything.frame)["unread"] == 0
    assert mark_read(alice.pk, up_to=3) is None  # nothing left unread: no event
    assert json.loads(notify(alice, "n3").frame)["unread"] == 1


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("x:1", "error", {}), {}), (("x:1", "ok", {"seq": 3}), {}), (("bad name", "ok", {}), {})],
)
def test_publish_refuses_what_the_protocol_reserves(args: tuple, kwargs: dict) -> None:
    with pytest.raises((PublishError, ValueError)):
        publish(*args, **kwargs)


def test_notify_refuses_reserved_data(make_user: Any) -> None:
    with pytest.raises(PublishError):
        notify(make_user("alice"), "hi", unread=5)


def test_append_once_stores_a_client_id_once(make_user: Any) -> None:
    alice = make_user("alice")
    first, created = eventlog.append_once(
        "chat:1", "message", {"text": "hi"}, sender_id=alice.pk, client_id="c-1"
    )
    again, created_again = eventlog.append_once(
        "chat:1", "message", {"text": "hi"}, sender_id=alice.pk, client_id="c-1"
    )
    assert created and not created_again
    assert again.seq == first.seq == 1 and again.frame == first.frame
    assert Event.objects.count() == 1


def test_prune_moves_the_oldest_kept_seq(settings: Any) -> None:
    settings.BEACON = {"RETENTION_EVENTS": 2}
    for i in range(5):
        publish("news:1", "item", {"n": i})
    assert eventlog.prune() == 3
    position = eventlog.position("news:1")
    assert position is not None and position.first_seq == 4 and position.last_seq == 5
    assert [seq for seq, _ in eventlog.events_after("news:1", 0)] == [4, 5]


def test_publishing_to_a_stream_nobody_can_receive_raises(
    delivered: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beacon import publish_ephemeral, streams
    from beacon.exceptions import StreamError

    class ProjectPolicy(streams.StreamPolicy):
        def is_canonical(self, key: str) -> bool:
            return key.isdigit() and str(int(key)) == key

    monkeypatch.setitem(streams._policies, "project", ProjectPolicy())

    with pytest.raises(PublishError, match="no stream namespace 'nosuch'"):
        publish("nosuch:1", "item", {})
    with pytest.raises(PublishError, match="refuses the key 'abc'"):
        publish("project:abc", "build", {})
    with pytest.raises(PublishError, match="refuses the key"):
        publish("room:abc", "message", {})  # beacon.chat's rooms have numeric keys
    with pytest.raises(PublishError, match="refuses the key"):
        publish("room:02", "message", {})  # room 2 has one name
    with pytest.raises(PublishError):
        publish_ephemeral("nosuch:1", "typing", {})
    with pytest.raises(StreamError):
        publish("not a name", "item", {})
    assert Event.objects.count() == 0 and Stream.objects.count() == 0 and delivered == []
    assert publish("project:42", "build", {}).seq == 1


def test_notifying_nobody_raises_a_clear_publish_error(make_user: Any, delivered: list) -> None:
    from django.contrib.auth.models import AnonymousUser

    alice = make_user("alice")
    for nobody in (None, AnonymousUser()):
        with pytest.raises(PublishError, match="anonymous user"):
            notify(nobody, "hello")
        with pytest.raises(PublishError):
            notify_many([alice, nobody], "hello")
    with pytest.raises(PublishError, match="unsaved"):
        notify(type(alice)(username="ghost"), "hello")
    assert Event.objects.count() == 0 and delivered == []


def test_a_lazy_translation_is_a_message(make_user: Any, delivered: list) -> None:
    from django.utils.translation import gettext_lazy

    alice, bob = make_user("alice"), make_user("bob")
    notify(alice, gettext_lazy("Your export is ready"))
    notify_many([bob], gettext_lazy("Hello"))
    frames = [json.loads(frame) for _, _, frame in delivered]
    assert [f["message"] for f in frames] == ["Your export is ready", "Hello"]


def test_beacon_prune_counts_events_apart_from_their_notification_rows(
    make_user: Any, settings: Any
) -> None:
    import io

    from django.core.management import call_command

    alice = make_user("alice")
    for i in range(5):
        notify(alice, f"n{i}")
    publish("news:1", "item", {})
    settings.BEACON = {"RETENTION_EVENTS": 2}
    out = io.StringIO()
    call_command("beacon_prune", stdout=out)
    assert out.getvalue().strip() == (
        "deleted 3 event(s) and, with them, 3 beacon.Notification row(s)"
    )
    assert Event.objects.count() == 3 and Notification.objects.count() == 2
    out = io.StringIO()
    call_command("beacon_prune", stdout=out)
    assert out.getvalue().strip() == "deleted 0 event(s)"


def test_the_event_log_is_read_only_in_the_admin(make_user: Any, client: Any) -> None:
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(root)
    event = publish("news:1", "item", {"n": 1})
    row = Event.objects.get(pk=event.id)
    assert client.get("/admin/beacon/event/").status_code == 200
    assert client.get("/admin/beacon/event/add/").status_code == 403
    change = f"/admin/beacon/event/{row.pk}/change/"
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"stream": row.stream_id, "seq": 99, "type": "x"}).status_code == 403
    assert client.post(f"/admin/beacon/event/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.get(pk=row.pk).seq == 1
