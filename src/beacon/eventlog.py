"""The durable, numbered event log: appending, reading, pruning. Synchronous ORM code.

Seq assignment is the heart of it. ``append`` first runs::

    UPDATE beacon_stream SET last_seq = last_seq + 1 WHERE name = %s RETURNING ...

inside the caller's transaction. The UPDATE takes the stream row's write lock and
keeps it until commit, so a second writer to the same stream waits, then gets the
next seq: commit order is seq order and a rollback gives its seq back (the UPDATE is
rolled back too). A global auto-increment id would not do: concurrent transactions
commit out of id order, and a reader resuming after the larger id would miss the
smaller one forever. On SQLite the whole database is locked instead, which gives the
same order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from .conf import get_config
from .models import Event, Stream, new_epoch
from .protocol import check_event, event_frame


@dataclass(frozen=True, slots=True)
class Position:
    """Where a stream stands: its epoch, newest seq and oldest seq still kept."""

    epoch: str
    last_seq: int
    first_seq: int


@dataclass(frozen=True, slots=True)
class Appended:
    """An event written to the log, ready to deliver once its transaction commits."""

    stream: str
    seq: int
    epoch: str
    frame: str
    id: int


def _db(using: str | None) -> str:
    return using or router.db_for_write(Event)


def ensure_stream(name: str, *, using: str | None = None) -> None:
    """Create the stream's row if it does not exist (safe against concurrent creators)."""
    Stream.objects.using(_db(using)).bulk_create(
        [Stream(name=name, epoch=new_epoch())], ignore_conflicts=True
    )


def _reserve(name: str, count: int, using: str) -> tuple[int, str, int]:
    """Bump the stream's ``last_seq`` by ``count``, locking its row until commit.

    Returns ``(stream_id, epoch, last_seq)``; the reserved seqs end at ``last_seq``.
    """
    sql = (
        f"UPDATE {Stream._meta.db_table} SET last_seq = last_seq + %s "
        "WHERE name = %s RETURNING id, epoch, last_seq"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [count, name])
        row = cursor.fetchone()
        if row is None:
            ensure_stream(name, using=using)
            cursor.execute(sql, [count, name])
            row = cursor.fetchone()
    return row[0], row[1], row[2]


def append(
    stream: str,
    type: str,
    data: dict[str, Any],
    *,
    enrich: Callable[[int], dict[str, Any]] | None = None,
    sender_id: Any = None,
    client_id: str | None = None,
    using: str | None = None,
) -> Appended:
    """Write one event; must run inside a transaction (the seq lock lasts until commit).

    ``enrich(seq)`` runs while the stream is locked and may add data that has to be
    consistent with the stream's order, such as the unread count after this event.
    """
    using = _db(using)
    stream_id, epoch, seq = _reserve(stream, 1, using)
    if enrich is not None:
        data = {**data, **enrich(seq)}
    check_event(type, data)  # data must never overwrite the frame's own stream/seq/epoch
    frame = event_frame(type=type, stream=stream, seq=seq, epoch=epoch, data=data, ts=time.time())
    event = Event.objects.using(using).create(
        stream_id=stream_id,
        seq=seq,
        type=type,
        frame=frame,
        sender_id=sender_id,
        client_id=client_id,
    )
    return Appended(stream=stream, seq=seq, epoch=epoch, frame=frame, id=event.id)


def append_to_each(
    type: str,
    data_by_stream: dict[str, dict[str, Any]],
    *,
    enrich: Callable[[dict[str, int]], dict[str, dict[str, Any]]] | None = None,
) -> list[Appended]:
    """Write one event to each of many streams in a few statements, whatever their number.

    The streams' rows are locked in name order first (``SELECT … FOR UPDATE``), so two
    bulk writers with overlapping streams cannot deadlock; then one ``UPDATE …
    RETURNING`` bumps every ``last_seq`` and one bulk insert writes the events. Must run
    inside a transaction, like :func:`append`. ``enrich({stream: seq})`` runs once,
    while the streams are locked, and returns extra data per stream.
    """
    names = sorted(data_by_stream)
    if not names:
        return []
    using = _db(None)
    streams = Stream.objects.using(using)
    existing = set(streams.filter(name__in=names).values_list("name", flat=True))
    if len(existing) < len(names):  # create the missing rows before locking any
        streams.bulk_create(
            [Stream(name=name, epoch=new_epoch()) for name in names if name not in existing],
            ignore_conflicts=True,
        )
    reserved: dict[str, tuple[int, str, int]] = {}
    table = Stream._meta.db_table
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        list(
            streams.select_for_update()
            .filter(name__in=chunk)
            .order_by("name")
            .values_list("id", flat=True)
        )
        marks = ", ".join(["%s"] * len(chunk))
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last_seq = last_seq + 1 WHERE name IN ({marks}) "
                "RETURNING name, id, epoch, last_seq",
                chunk,
            )
            reserved.update((row[0], tuple(row[1:])) for row in cursor.fetchall())
    extra = enrich({name: r[2] for name, r in reserved.items()}) if enrich is not None else {}
    now = time.time()
    events = []
    for name in names:
        stream_id, epoch, seq = reserved[name]
        data = {**data_by_stream[name], **extra.get(name, {})}
        check_event(type, data)
        frame = event_frame(type=type, stream=name, seq=seq, epoch=epoch, data=data, ts=now)
        events.append(Event(stream_id=stream_id, seq=seq, type=type, frame=frame))
    Event.objects.using(using).bulk_create(events, batch_size=500)
    return [
        Appended(stream=name, seq=e.seq, epoch=reserved[name][1], frame=e.frame, id=e.pk)
        for name, e in zip(names, events, strict=True)
    ]


def find_client_event(stream: str, sender_id: Any, client_id: str) -> Appended | None:
    """The event a client already published with this id, if any (idempotent resend)."""
    row = (
        Event.objects.filter(stream__name=stream, sender_id=sender_id, client_id=client_id)
        .values_list("seq", "stream__epoch", "frame", "id")
        .first()
    )
    if row is None:
        return None
    return Appended(stream=stream, seq=row[0], epoch=row[1], frame=row[2], id=row[3])


def append_once(
    stream: str, type: str, data: dict[str, Any], *, sender_id: Any, client_id: str
) -> tuple[Appended, bool]:
    """Append unless this sender already published ``client_id`` here: ``(event, created)``."""
    existing = find_client_event(stream, sender_id, client_id)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return append(stream, type, data, sender_id=sender_id, client_id=client_id), True
    except IntegrityError:
        existing = find_client_event(stream, sender_id, client_id)
        if existing is None:
            raise
        return existing, False


def position(stream: str, *, create: bool = True) -> Position | None:
    """The stream's epoch and seq bounds (creating its row when asked)."""
    row = Stream.objects.filter(name=stream).values_list("epoch", "last_seq", "first_seq").first()
    if row is None and create:
        ensure_stream(stream)
        row = (
            Stream.objects.filter(name=stream).values_list("epoch", "last_seq", "first_seq").first()
        )
    return None if row is None else Position(*row)


def events_after(stream: str, after: int, *, limit: int | None = None) -> list[tuple[int, str]]:
    """``(seq, frame)`` of the stream's events after seq ``after``, oldest first."""
    limit = limit or get_config()["REPLAY_PAGE_SIZE"]
    rows = (
        Event.objects.filter(stream__name=stream, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "frame")[:limit]
    )
    return list(rows)


def events_before(stream: str, before: int | None, *, limit: int) -> list[tuple[int, str]]:
    """``(seq, frame)`` of up to ``limit`` events before seq ``before``, newest first."""
    rows = Event.objects.filter(stream__name=stream)
    if before is not None:
        rows = rows.filter(seq__lt=before)
    return list(rows.order_by("-seq").values_list("seq", "frame")[:limit])


def last_seqs(streams: Iterable[str]) -> dict[str, int]:
    """Newest seq of each named stream that exists (the log watcher's poll)."""
    names = list(streams)
    found: dict[str, int] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        found.update(Stream.objects.filter(name__in=chunk).values_list("name", "last_seq"))
    return found


def heads(streams: Iterable[str]) -> dict[str, tuple[str, int]]:
    """``(epoch, newest seq)`` of each named stream that exists (the log watcher's poll)."""
    names = list(streams)
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        rows = Stream.objects.filter(name__in=chunk).values_list("name", "epoch", "last_seq")
        found.update((name, (epoch, last)) for name, epoch, last in rows)
    return found
@dataclass(frozen=True)
class Pruned:
    """What one prune deleted: events, and the rows that went with them (by model)."""

    events: int
    cascaded: dict[str, int]


def prune(*, now: Any = None) -> int:
    """Apply the retention settings; returns how many events were deleted."""
    return prune_rows(now=now).events


def prune_rows(*, now: Any = None) -> Pruned:
    """Apply the retention settings; counts events apart from the rows they cascade to
    (a notification's ``Notification`` row, say)."""
    cascaded: dict[str, int] = {}
    config = get_config()
    now = now or timezone.now()
    cutoff = now - timedelta(days=config["RETENTION_DAYS"])
    keep = config["RETENTION_EVENTS"]
    deleted = 0
    for stream in Stream.objects.iterator():
        with transaction.atomic():
            old = Event.objects.filter(stream=stream).filter(
                Q(created_at__lt=cutoff) | Q(seq__lte=stream.last_seq - keep)
            )
            _, rows = old.delete()
            count = rows.pop(Event._meta.label, 0)
            for label, n in rows.items():
                cascaded[label] = cascaded.get(label, 0) + n
            if count:
                deleted += count
                oldest = (
                    Event.objects.filter(stream=stream)
                    .order_by("seq")
                    .values_list("seq", flat=True)
                ).first()
                first = oldest if oldest is not None else stream.last_seq + 1
                Stream.objects.filter(pk=stream.pk).update(first_seq=first)
    return Pruned(deleted, {label: n for label, n in cascaded.items() if n})
