"""The unread counter on the user stream's row, and set-based pruning (SQLite or
PostgreSQL; the concurrent tests need PostgreSQL)."""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beacon import eventlog, mark_read, notify, notify_many, publish, unread_count
from beacon.models import Event, Notification, Stream

pytestmark = pytest.mark.django_db(transaction=True)


def counted(user: Any) -> int:
    """The unread rows, counted (what the counter must always equal)."""
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def counter(user: Any) -> int:
    return Stream.objects.get(name=f"user:{user.pk}").unread


def test_notify_counts_no_rows(make_user: Any) -> None:
    alice = make_user("alice")
    for i in range(3):
        notify(alice, f"n{i}")
    with CaptureQueriesContext(connection) as queries:
        frame = json.loads(notify(alice, "four").frame)
    statements = [q["sql"] for q in queries.captured_queries]
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    work = [s for s in statements if not s.startswith(control)]
    assert frame["unread"] == 4
    assert not [s for s in statements if "COUNT(" in s.upper()]
    # Bump seq and counter; insert the event and its read state: outside a
    # transaction one statement on PostgreSQL (eventlog.append_now), three on SQLite.
    assert len(work) == (1 if connection.vendor == "postgresql" else 3)
    assert len(statements) == (1 if connection.vendor == "postgresql" else 5)


def test_the_counter_follows_notify_mark_read_and_notify_many(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for i in range(4):
        notify(alice, f"n{i}")
    notify_many([alice, bob], "both")
    assert (counter(alice), counter(bob)) == (5, 1)
    read = mark_read(alice.pk, seq=2)
    assert read is not None and json.loads(read.frame)["unread"] == 4
    assert mark_read(alice.pk, seq=2) is None and counter(alice) == 4  # already read
    up_to = mark_read(alice.pk, up_to=4)  # seqs 1, 3 and 4: 2 is read already
    assert up_to is not None and json.loads(up_to.frame)["unread"] == 1
    assert unread_count(alice.pk) == counted(alice) == 1
    assert unread_count(bob.pk) == counted(bob) == 1


def test_notify_many_writes_each_users_row_in_statements_that_do_not_grow_with_users() -> None:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    few = User.objects.bulk_create([User(username=f"few{i}") for i in range(3)])
    many = User.objects.bulk_create([User(username=f"many{i}") for i in range(1200)])
    if not few[0].pk:  # a database that does not return bulk-created ids
        few = list(User.objects.filter(username__startswith="few").order_by("pk"))
        many = list(User.objects.filter(username__startswith="many"))
    statements = []
    for users in (few, many):
        notify_many(users, "first")  # creates the streams
        with CaptureQueriesContext(connection) as queries:
            # string ids are user ids as well
            events = notify_many([str(u.pk) for u in users], "second", n=len(users))
        statements.append(len(queries.captured_queries))
        assert len(events) == len(users)
        rows = {
            (n.user_id, n.seq, n.event_id)
            for n in Notification.objects.filter(user__in=users, seq=2, read_at__isnull=True)
        }
        by_name = {f"user:{u.pk}": u.pk for u in users}
        assert rows == {(by_name[e.stream], e.seq, e.id) for e in events}
        for e in events[:3]:
            frame = json.loads(Event.objects.get(pk=e.id).frame)
            assert frame == json.loads(e.frame)
            assert (frame["seq"], frame["unread"], frame["n"]) == (2, 2, len(users))
    if connection.vendor == "postgresql":  # arrays: one statement per step, whatever the number
        assert statements[0] == statements[1]


def test_prune_in_batches_moves_first_seq_and_the_counter(
    make_user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    settings.BEACON = {"RETENTION_EVENTS": 2, "RETENTION_DAYS": 30}
    monkeypatch.setattr(eventlog, "PRUNE_STREAMS", 2)  # several ranges ...
    monkeypatch.setattr(eventlog, "PRUNE_EVENTS", 3)  # ... and several passes of one
    users = [make_user(f"u{i}") for i in range(5)]
    for i, user in enumerate(users):
        for n in range(i + 1):
            notify(user, f"n{n}")
    mark_read(users[4].pk, seq=1)  # read: its row goes, the counter does not move for it
    for n in range(6):
        publish("news:1", "item", {"n": n})
    Event.objects.filter(stream__name="news:1", seq=6).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    # user 4: seqs 1-5 notifications and 6 the read event; keep the newest two (5, 6).
    call_command("beacon_prune")
    expected_events = 0 + 0 + 1 + 2 + 4 + 5  # users 0..4, news:1 (1-4 by count, 6 by age)
    assert capsys.readouterr().out.strip() == (
        f"deleted {expected_events} event(s) and, with them, 7 beacon.Notification row(s)"
    )
    for user in users:
        position = eventlog.position(f"user:{user.pk}")
        assert position is not None
        kept = Event.objects.filter(stream__name=f"user:{user.pk}").values_list("seq", flat=True)
        assert position.first_seq == min(kept)
        assert counter(user) == counted(user)
    assert counter(users[4]) == 1  # notification 5 is left, unread
    news = eventlog.position("news:1")
    assert news is not None and (news.first_seq, news.last_seq) == (5, 6)
    assert eventlog.prune() == 0


def test_prune_of_an_empty_log_deletes_nothing() -> None:
    assert eventlog.prune_rows() == eventlog.Pruned(0, {})


# -- PostgreSQL: concurrent writers ---------------------------------------------------------


def _in_threads(target: Any, count: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def wrapped(i: int) -> None:
        try:
            start.wait()
            target(i)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


@pytest.mark.postgres
def test_concurrent_notify_mark_read_and_prune_keep_the_counter_exact(
    make_user: Any, settings: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL pointing at PostgreSQL")
    settings.BEACON = {"RETENTION_EVENTS": 15}
    alice = make_user("alice")
    stream = f"user:{alice.pk}"

    def work(i: int) -> None:
        rng = random.Random(i)
        for n in range(25):
            if i % 3 == 0:
                notify(alice, f"from {i}: {n}")
            elif i % 3 == 1:
                last = eventlog.position(stream).last_seq  # type: ignore[union-attr]
                if rng.random() < 0.5:
                    mark_read(alice.pk, seq=rng.randint(1, max(last, 1)))
                else:
                    mark_read(alice.pk, up_to=rng.randint(0, last))
            elif n % 5 == 0:
                eventlog.prune()

    assert _in_threads(work, 9) == []
    assert counter(alice) == counted(alice)
    newest = Event.objects.filter(stream__name=stream).order_by("-seq").first()
    assert newest is not None and json.loads(newest.frame)["unread"] == counted(alice)
