"""Seq assignment under concurrency, on PostgreSQL (run by `make test-postgres`)."""

from __future__ import annotations

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
