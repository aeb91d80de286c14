"""Seq assignment under concurrency, on PostgreSQL (run by `make test-postgres`)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, connections, transaction

from beacon import eventlog, publish
from beacon.models import Event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 8
PER_WRITER = 40


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL pointing at PostgreSQL")


def _run_in_threads(target, count: int) -> list[BaseException]:  # type: ignore[no-untyped-def]
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


def test_concurrent_writers_get_gap_free_unique_seqs() -> None:
    def write(i: int) -> None:
        for n in range(PER_WRITER):
            with transaction.atomic():
                publish("load:1", "tick", {"writer": i, "n": n})
                # Hold the transaction open a little so that writers queue on the lock.
                time.sleep(0.0005 * (n % 3))

    assert _run_in_threads(write, WRITERS) == []
    total = WRITERS * PER_WRITER
    seqs = sorted(Event.objects.filter(stream__name="load:1").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))


def test_a_reader_resuming_from_any_seq_misses_nothing_while_writers_commit() -> None:
    total = WRITERS * PER_WRITER
    seen: list[int] = []
    done = threading.Event()

    def write(i: int) -> None:
        for n in range(PER_WRITER):
            publish("load:2", "tick", {"writer": i, "n": n})

    def read() -> None:
        last = 0
        try:
            while len(seen) < total:
                for seq, _ in eventlog.events_after("load:2", last, limit=50):
                    seen.append(seq)
                    last = seq
                if (
                    done.is_set()
                    and len(seen) < total
                    and not eventlog.events_after("load:2", last, limit=1)
                ):
                    break
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    errors = _run_in_threads(write, WRITERS)
    done.set()
    reader.join(60)
    assert errors == []
    assert seen == list(range(1, total + 1))


def test_a_rolled_back_writer_gives_its_seq_back() -> None:
    def write(i: int) -> None:
        try:
            with transaction.atomic():
                publish("load:3", "tick", {"writer": i})
                if i % 2:
                    raise RuntimeError("roll back")
        except RuntimeError:
            pass

    assert _run_in_threads(write, WRITERS) == []
    seqs = sorted(Event.objects.filter(stream__name="load:3").values_list("seq", flat=True))
    assert seqs == list(range(1, WRITERS // 2 + 1))


def test_overlapping_bulk_notifications_neither_deadlock_nor_skip_seqs() -> None:
    import random

    from django.contrib.auth import get_user_model

    from beacon import notify_many

    users = [get_user_model().objects.create_user(f"bulk{i}") for i in range(30)]

    def write(i: int) -> None:
        mine = random.Random(i).sample(users, 20)
        for _ in range(5):
            notify_many(mine, f"from writer {i}")

    assert _run_in_threads(write, WRITERS) == []
    for user in users:
        seqs = sorted(
            Event.objects.filter(stream__name=f"user:{user.pk}").values_list("seq", flat=True)
        )
        assert seqs == list(range(1, len(seqs) + 1))


def test_autocommit_writers_in_one_statement_get_gap_free_seqs_and_counts() -> None:
    """``notify()``/``publish()`` outside a transaction write in one statement each
    (``eventlog.append_now``): the row lock still orders them, and the counter counts."""
    from django.contrib.auth import get_user_model

    from beacon import notify
    from beacon.models import Notification, Stream

    alice = get_user_model().objects.create_user("alice")
    notify(alice, "makes the stream")
    publish("load:2", "tick", {})

    def write(i: int) -> None:
        for n in range(PER_WRITER // 2):
            assert connection.get_autocommit() and not connection.in_atomic_block
            notify(alice, f"from {i}", n=n)
            publish("load:2", "tick", {"writer": i, "n": n})

    assert _run_in_threads(write, WRITERS) == []
    total = 1 + WRITERS * (PER_WRITER // 2)
    for name in (f"user:{alice.pk}", "load:2"):
        seqs = sorted(Event.objects.filter(stream__name=name).values_list("seq", flat=True))
        assert seqs == list(range(1, total + 1))
    unread = sorted(
        json.loads(frame)["unread"]
        for frame in Event.objects.filter(stream__name=f"user:{alice.pk}").values_list(
            "frame", flat=True
        )
    )
    assert unread == list(range(1, total + 1))
    assert Stream.objects.get(name=f"user:{alice.pk}").unread == total
    assert Notification.objects.filter(user=alice).count() == total


def test_a_frame_written_in_one_statement_is_the_frame_event_frame_makes() -> None:
    from beacon.protocol import event_frame

    tricky = {
        "message": 'quotes " and \\ backslash, ünïcödé, emoji \U0001f600, tab\t, nul-ish \x1f',
        "nested": {"a": [1, 2.5, None, True], "b": {"c": "d"}},
        "big": 2**62,
        "float": 0.1,
        "empty": "",
    }
    publish("load:3", "first", {})  # the stream exists: one statement from now on
    for data, unread in ((tricky, None), ({}, None), (tricky, 1)):
        event = eventlog.append_now("load:3", "kind", data, unread=unread)
        assert event is not None
        parsed = json.loads(event.frame)
        expected = {**data, "unread": parsed["unread"]} if unread else data
        assert event.frame == event_frame(
            type="kind",
            stream="load:3",
            seq=event.seq,
            epoch=event.epoch,
            data=expected,
            ts=parsed["ts"],
        )
        stored = Event.objects.get(pk=event.id)
        assert (stored.frame, stored.seq) == (event.frame, event.seq)
        assert stored.stream.epoch == event.epoch
    # Not in one statement: inside a transaction, or a stream that does not exist yet.
    with transaction.atomic():
        assert eventlog.append_now("load:3", "kind", {}) is None
    assert eventlog.append_now("load:nothing-yet", "kind", {}) is None
    assert not Event.objects.filter(stream__name="load:nothing-yet").exists()
