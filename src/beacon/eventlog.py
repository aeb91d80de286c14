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
from django.db.models import Max, Min
from django.utils import timezone

from .conf import get_config
from .models import Event, Notification, Stream, new_epoch
from .protocol import check_event, dumps, event_frame


@dataclass(frozen=True, slots=True)
class Position:
    """Where a stream stands: its epoch, newest seq and oldest seq still kept (and, for
    a user stream, its unread count, read from the same row)."""

    epoch: str
    last_seq: int
    first_seq: int
    unread: int = 0


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
    _create_stream(name, _db(using))


def _create_stream(name: str, using: str) -> tuple[str, int, int, int] | None:
    """Create the stream's row unless it exists: its ``position`` row if this call made
    it and the database says so (``RETURNING``), else None.

    One plain ``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite (the first
    subscribe or publish of every stream makes it), the ORM elsewhere.
    """
    connection = connections[using]
    if connection.vendor not in ("postgresql", "sqlite"):
        Stream.objects.using(using).bulk_create(
            [Stream(name=name, epoch=new_epoch())], ignore_conflicts=True
        )
        return None
    row = Stream(name=name, epoch=new_epoch())  # the model's defaults, no query
    fields = [f for f in Stream._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column or f.name) for f in fields)
    values = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
    returning = connection.features.can_return_columns_from_insert
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Stream._meta.db_table} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT (name) DO NOTHING"
            + (" RETURNING epoch, last_seq, first_seq, unread" if returning else ""),
            values,
        )
        made = cursor.fetchone() if returning else None
    return None if made is None else (made[0], made[1], made[2], made[3])


def _reserve(name: str, count: int, using: str, unread: int = 0) -> tuple[int, str, int, int]:
    """Bump the stream's ``last_seq`` by ``count`` (and ``unread`` by ``unread``), locking
    its row until commit.

    Returns ``(stream_id, epoch, last_seq, unread)``; the reserved seqs end at ``last_seq``.
    """
    sql = (
        f"UPDATE {Stream._meta.db_table} SET last_seq = last_seq + %s, unread = unread + %s "
        "WHERE name = %s RETURNING id, epoch, last_seq, unread"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [count, unread, name])
        row = cursor.fetchone()
        if row is None:
            ensure_stream(name, using=using)
            cursor.execute(sql, [count, unread, name])
            row = cursor.fetchone()
    return row[0], row[1], row[2], row[3]


def append(
    stream: str,
    type: str,
    data: dict[str, Any],
    *,
    enrich: Callable[[int], dict[str, Any]] | None = None,
    sender_id: Any = None,
    client_id: str | None = None,
    unread: int | None = None,
    notification_for: Any = None,
    using: str | None = None,
) -> Appended:
    """Write one event; must run inside a transaction (the seq lock lasts until commit).

    ``enrich(seq)`` runs while the stream is locked and may add data that has to be
    consistent with the stream's order. ``unread`` (a user stream's notifications)
    changes the stream's unread counter by that much in the same statement, and the
    frame's data gets ``"unread"``: the count after this event. ``notification_for``
    (a user id) also writes that user's ``Notification`` row for the event.
    """
    using = _db(using)
    stream_id, epoch, seq, count = _reserve(stream, 1, using, unread or 0)
    if enrich is not None:
        data = {**data, **enrich(seq)}
    if unread is not None:
        data = {**data, "unread": count}
    check_event(type, data)  # data must never overwrite the frame's own stream/seq/epoch
    frame = event_frame(type=type, stream=stream, seq=seq, epoch=epoch, data=data, ts=time.time())
    row = [stream_id, seq, type, frame, sender_id, client_id]
    event_id = _insert(using, row, notification_for)
    return Appended(stream=stream, seq=seq, epoch=epoch, frame=frame, id=event_id)


def append_now(
    stream: str,
    type: str,
    data: dict[str, Any],
    *,
    unread: int | None = None,
    notification_for: Any = None,
) -> Appended | None:
    """:func:`append` as one statement that commits by itself, where that can be: on
    PostgreSQL, outside any transaction (autocommit), to a stream that exists. None
    elsewhere, and nothing written: the caller appends in a transaction instead.

    The statement bumps the stream's seq (and unread counter) under its row lock,
    inserts the event — its frame assembled from the text :func:`event_frame` would
    make around the seq, epoch and count the ``UPDATE`` returns — and the user's
    ``Notification`` row. One round trip instead of four (``BEGIN``, the ``UPDATE``,
    the insert, ``COMMIT``), and no transaction handling in Python: half of a single
    ``notify()``'s CPU.
    """
    using = _db(None)
    connection = connections[using]
    if (
        connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not connection.get_autocommit()
        or (unread is not None and "unread" in data)
    ):
        return None
    check_event(type, data)
    ts = time.time()
    # The frame event_frame() makes, cut around the values only the UPDATE knows:
    # {"type":…,"stream":…,"seq":<seq>,"epoch":<epoch>,"ts":…,…data[,"unread":<n>]}
    head = dumps({"type": type, "stream": stream})[:-1] + ',"seq":'
    tail = "," + dumps({"ts": round(ts, 3), **data})[1:]
    if unread is not None:
        tail = tail[:-1] + ',"unread":'
    frame_sql = "%s::text || s.last_seq || %s::text || to_json(s.epoch)::text || %s::text"
    if unread is not None:
        frame_sql += " || s.unread || '}'"
    event, stream_table, notification = (
        Event._meta.db_table,
        Stream._meta.db_table,
        Notification._meta.db_table,
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params: list[Any] = [unread or 0, stream, head, ',"epoch":', tail, type, now]
    sql = (
        f"WITH s AS (UPDATE {stream_table} SET last_seq = last_seq + 1, unread = unread + %s "
        "WHERE name = %s RETURNING id, epoch, last_seq, unread), "
        f"f AS (SELECT s.id, s.epoch, s.last_seq, {frame_sql} AS frame FROM s), "
        f"e AS (INSERT INTO {event} (stream_id, seq, type, frame, created_at) "
        "SELECT f.id, f.last_seq, %s, f.frame, %s FROM f RETURNING id)"
    )
    if notification_for is not None:
        sql += (
            f", n AS (INSERT INTO {notification} (user_id, seq, event_id) "
            "SELECT %s, f.last_seq, e.id FROM f, e)"
        )
        user = Notification._meta.get_field("user").target_field
        params.append(user.get_db_prep_save(notification_for, connection))
    sql += " SELECT e.id, f.epoch, f.last_seq, f.frame FROM e, f"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:  # no such stream yet: nothing was written
        return None
    return Appended(stream=stream, seq=row[2], epoch=row[1], frame=row[3], id=row[0])


def _insert(using: str, row: list[Any], notification_for: Any) -> int:
    """Insert the event (and the user's ``Notification`` row): one statement on PostgreSQL.

    Plain SQL rather than ``objects.create``: the ORM's per-row work was the larger
    part of a ``notify()``'s CPU time.
    """
    connection = connections[using]
    event, notification = Event._meta.db_table, Notification._meta.db_table
    insert = (
        f"INSERT INTO {event} (stream_id, seq, type, frame, sender_id, client_id, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )
    params = [*row, connection.ops.adapt_datetimefield_value(timezone.now())]
    with connection.cursor() as cursor:
        if notification_for is not None and connection.vendor == "postgresql":
            cursor.execute(
                f"WITH e AS ({insert}) INSERT INTO {notification} (user_id, seq, event_id) "
                "SELECT %s, %s, id FROM e RETURNING event_id",
                [*params, notification_for, row[1]],
            )
            return int(cursor.fetchone()[0])
        cursor.execute(insert, params)
        event_id = int(cursor.fetchone()[0])
        if notification_for is not None:
            cursor.execute(
                f"INSERT INTO {notification} (user_id, seq, event_id) VALUES (%s, %s, %s)",
                [notification_for, row[1], event_id],
            )
    return event_id


def append_to_each(
    type: str,
    data_by_stream: dict[str, dict[str, Any]],
    *,
    enrich: Callable[[dict[str, int]], dict[str, dict[str, Any]]] | None = None,
    unread: int | None = None,
    notification_for: dict[str, Any] | None = None,
) -> list[Appended]:
    """Write one event to each of many streams in a few statements, whatever their number.

    The streams' rows are locked in name order first (``SELECT … FOR UPDATE``), so two
    bulk writers with overlapping streams cannot deadlock; then one ``UPDATE …
    RETURNING`` bumps every ``last_seq`` and one bulk insert writes the events. Must run
    inside a transaction, like :func:`append`. ``enrich({stream: seq})`` runs once,
    while the streams are locked, and returns extra data per stream; ``unread`` works
    as in :func:`append`, for each stream, and ``notification_for`` (``{stream: user
    id}``) writes each of those users' ``Notification`` row for the stream's event.

    On PostgreSQL through psycopg 3 the names, frames and ids travel as binary arrays,
    one parameter each (``_bulk_pg``): quoting a thousand frames into the SQL text, as
    Django's client-side binding does, cost more CPU than the rest of the call.
    """
    names = sorted(data_by_stream)
    if not names:
        return []
    using = _db(None)
    batch = _Batch(type, names, data_by_stream, enrich, unread, notification_for)
    return (_bulk_pg if _binds_binary(connections[using]) else _bulk_orm)(using, batch)


def _binds_binary(connection: Any) -> bool:
    """Whether ``connection`` is PostgreSQL through psycopg 3 (binary parameters)."""
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


@dataclass(frozen=True, slots=True)
class _Batch:
    """What :func:`append_to_each` writes: one event of ``type`` to each of ``names``."""

    type: str
    names: list[str]
    data_by_stream: dict[str, dict[str, Any]]
    enrich: Callable[[dict[str, int]], dict[str, dict[str, Any]]] | None
    unread: int | None
    notification_for: dict[str, Any] | None

    def frames(self, reserved: dict[str, tuple[int, str, int, int]]) -> list[str]:
        """Each stream's frame, in the order of ``names``, once its seq is reserved."""
        enrich, unread = self.enrich, self.unread
        extra = enrich({name: r[2] for name, r in reserved.items()}) if enrich else {}
        now = time.time()
        frames = []
        for name in self.names:
            _, epoch, seq, count = reserved[name]
            data = {**self.data_by_stream[name], **extra.get(name, {})}
            if unread is not None:
                data["unread"] = count
            check_event(self.type, data)
            frames.append(
                event_frame(type=self.type, stream=name, seq=seq, epoch=epoch, data=data, ts=now)
            )
        return frames


def _create_missing(using: str, names: list[str], existing: set[str]) -> None:
    """Create the rows of the streams not in ``existing``, before any row is locked."""
    if len(existing) < len(names):
        Stream.objects.using(using).bulk_create(
            [Stream(name=name, epoch=new_epoch()) for name in names if name not in existing],
            ignore_conflicts=True,
        )


def _bulk_pg(using: str, batch: _Batch) -> list[Appended]:
    """:func:`append_to_each` on PostgreSQL: four statements, each with array parameters
    sent in binary (``%b``) by a server-binding cursor of the same connection (and
    transaction), wrapped like any Django cursor (execute wrappers, query logging)."""
    import psycopg

    names, notification_for = batch.names, batch.notification_for
    connection = connections[using]
    connection.ensure_connection()
    stream, event, notification = (
        Stream._meta.db_table,
        Event._meta.db_table,
        Notification._meta.db_table,
    )
    connection.validate_thread_sharing()
    raw: Any = psycopg.Cursor(connection.connection)
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(raw) as cursor:
        cursor.execute(f"SELECT name FROM {stream} WHERE name = ANY(%b::text[])", [names])
        _create_missing(using, names, {row[0] for row in cursor.fetchall()})
        cursor.execute(
            f"SELECT id FROM {stream} WHERE name = ANY(%b::text[]) ORDER BY name FOR UPDATE",
            [names],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"UPDATE {stream} SET last_seq = last_seq + 1, unread = unread + %b::bigint "
            "WHERE id = ANY(%b::bigint[]) RETURNING name, id, epoch, last_seq, unread",
            [batch.unread or 0, ids],
        )
        reserved = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
        frames = batch.frames(reserved)
        stream_ids = [reserved[name][0] for name in names]
        seqs = [reserved[name][2] for name in names]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        insert = (
            f"INSERT INTO {event} (stream_id, seq, type, frame, created_at) "
            "SELECT s, q, %b::text, f, %b FROM unnest(%b::bigint[], %b::bigint[], %b::text[]) "
            "AS t(s, q, f) RETURNING id, stream_id"
        )
        params: list[Any] = [batch.type, now, stream_ids, seqs, frames]
        if notification_for is None:
            cursor.execute(insert, params)
        else:
            field = Notification._meta.get_field("user")
            user_ids = [
                field.target_field.get_db_prep_save(notification_for[name], connection)
                for name in names
            ]
            user_type = field.db_type(connection)
            cursor.execute(
                f"WITH e AS ({insert}), n AS (INSERT INTO {notification} (user_id, seq, event_id) "
                f"SELECT u, q, e.id FROM e JOIN unnest(%b::bigint[], %b::{user_type}[], "
                "%b::bigint[]) AS t(s, u, q) ON t.s = e.stream_id) SELECT id, stream_id FROM e",
                [*params, stream_ids, user_ids, seqs],
            )
        event_ids = {stream_id: event_id for event_id, stream_id in cursor.fetchall()}
    return [
        Appended(name, seq, reserved[name][1], frame, event_ids[stream_id])
        for name, stream_id, seq, frame in zip(names, stream_ids, seqs, frames, strict=True)
    ]


def _bulk_orm(using: str, batch: _Batch) -> list[Appended]:
    """:func:`append_to_each` on other databases: through the ORM, 500 names a statement."""
    names, notification_for = batch.names, batch.notification_for
    streams = Stream.objects.using(using)
    existing = set(streams.filter(name__in=names).values_list("name", flat=True))
    _create_missing(using, names, existing)
    reserved: dict[str, tuple[int, str, int, int]] = {}
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
                f"UPDATE {table} SET last_seq = last_seq + 1, unread = unread + %s "
                f"WHERE name IN ({marks}) RETURNING name, id, epoch, last_seq, unread",
                [batch.unread or 0, *chunk],
            )
            reserved.update((row[0], tuple(row[1:])) for row in cursor.fetchall())
    frames = batch.frames(reserved)
    events = [
        Event(stream_id=reserved[name][0], seq=reserved[name][2], type=batch.type, frame=frame)
        for name, frame in zip(names, frames, strict=True)
    ]
    Event.objects.using(using).bulk_create(events, batch_size=500)
    if notification_for is not None:
        Notification.objects.using(using).bulk_create(
            [
                Notification(user_id=notification_for[name], seq=e.seq, event_id=e.pk)
                for name, e in zip(names, events, strict=True)
            ],
            batch_size=500,
        )
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
    """The stream's epoch, seq bounds and unread count (creating its row when asked).

    Plain SQL, like :func:`events_after`: every subscribe and resume reads these, and
    building the ORM query cost several times the query itself.
    """
    row = _position_row(stream)
    if row is None and create:
        row = _create_stream(stream, _db(None)) or _position_row(stream)
    return None if row is None else Position(*row)


def _position_row(stream: str) -> tuple[str, int, int, int] | None:
    with connections[router.db_for_read(Stream)].cursor() as cursor:
        cursor.execute(
            f"SELECT epoch, last_seq, first_seq, unread FROM {Stream._meta.db_table} "
            "WHERE name = %s",
            [stream],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


def events_after(stream: str, after: int, *, limit: int | None = None) -> list[tuple[int, str]]:
    """``(seq, frame)`` of the stream's events after seq ``after``, oldest first."""
    limit = limit or get_config()["REPLAY_PAGE_SIZE"]
    with connections[router.db_for_read(Event)].cursor() as cursor:
        cursor.execute(
            f"SELECT e.seq, e.frame FROM {Event._meta.db_table} e "
            f"JOIN {Stream._meta.db_table} s ON s.id = e.stream_id "
            "WHERE s.name = %s AND e.seq > %s ORDER BY e.seq LIMIT %s",
            [stream, after, limit],
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]


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


def log_mark() -> int:
    """The newest event id in the log (0 when empty): where a log scan starts."""
    return Event.objects.aggregate(mark=Max("id"))["mark"] or 0


def changes_after(mark: int, *, limit: int = 5000) -> tuple[int, dict[str, tuple[str, int]], bool]:
    """``(epoch, newest seq)`` per stream of the events after id ``mark``:
    ``(new mark, heads, more)``.

    One indexed range read whatever the number of streams. Only sound where event ids
    commit in id order — SQLite, whose writers hold the database lock from insert to
    commit. On PostgreSQL an id taken earlier may commit later, so the log watcher
    listens there instead (``fanout/logwatch.py``).
    """
    rows = list(
        Event.objects.filter(id__gt=mark)
        .order_by("id")
        .values_list("id", "stream__name", "stream__epoch", "seq")[:limit]
    )
    newest: dict[str, tuple[str, int]] = {}
    for _, name, epoch, seq in rows:  # id order: a stream's later row wins
        newest[name] = (epoch, seq)
    return (rows[-1][0] if rows else mark), newest, len(rows) == limit


@dataclass(frozen=True)
class Pruned:
    """What one prune deleted: events, and the rows that went with them (by model)."""

    events: int
    cascaded: dict[str, int]


#: Streams looked at per prune transaction, and events deleted per statement.
PRUNE_STREAMS = 2000
PRUNE_EVENTS = 5000


def prune(*, now: Any = None) -> int:
    """Apply the retention settings; returns how many events were deleted."""
    return prune_rows(now=now).events


def prune_rows(*, now: Any = None, using: str | None = None) -> Pruned:
    """Apply the retention settings; counts events apart from the rows they cascade to
    (a notification's ``Notification`` row).

    Set-based and bounded, whatever the number of streams: a transaction takes the
    streams of one id range (``PRUNE_STREAMS``), deletes up to ``PRUNE_EVENTS`` of
    their events past retention with a few statements — notification rows first (the
    database's foreign key has no cascade), then the events — and moves each touched
    stream's ``first_seq`` (and its ``unread`` count, for unread notifications that
    went) in one ``UPDATE``. A range with more to delete runs again.
    """
    config = get_config()
    using = _db(using)
    now = now or timezone.now()
    cutoff = now - timedelta(days=config["RETENTION_DAYS"])
    keep = config["RETENTION_EVENTS"]
    events = notifications = 0
    bounds = Stream.objects.using(using).aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return Pruned(0, {})
    low = bounds["low"]
    while low <= bounds["high"]:
        high = low + PRUNE_STREAMS
        with transaction.atomic(using=using):
            deleted, gone = _prune_batch(using, low, high, cutoff, keep)
        events += deleted
        notifications += gone
        if deleted < PRUNE_EVENTS:
            low = high
    cascaded = {Notification._meta.label: notifications} if notifications else {}
    return Pruned(events, cascaded)


def _prune_batch(using: str, low: int, high: int, cutoff: Any, keep: int) -> tuple[int, int]:
    """Delete up to ``PRUNE_EVENTS`` events past retention of streams ``[low, high)``.

    Returns ``(events, notification rows)`` deleted.
    """
    event, stream, notification = (
        Event._meta.db_table,
        Stream._meta.db_table,
        Notification._meta.db_table,
    )
    ops = connections[using].ops
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT e.id FROM {event} e JOIN {stream} s ON s.id = e.stream_id "
            "WHERE e.stream_id >= %s AND e.stream_id < %s "
            "AND (e.created_at < %s OR e.seq <= s.last_seq - %s) "
            "ORDER BY e.stream_id, e.seq LIMIT %s",
            [low, high, ops.adapt_datetimefield_value(cutoff), keep, PRUNE_EVENTS],
        )
        doomed = [row[0] for row in cursor.fetchall()]
        if not doomed:
            return 0, 0
        touched: set[int] = set()
        unread: dict[int, int] = {}
        gone = 0
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            # RETURNING tells which rows really went, and whether each was unread then
            # (a concurrent mark_read may have read it since the SELECT). The column
            # itself: SQLite 3.40 gets ``read_at IS NULL`` wrong in a DELETE's RETURNING.
            cursor.execute(
                f"DELETE FROM {notification} WHERE event_id IN ({marks}) "
                "RETURNING event_id, read_at",
                chunk,
            )
            rows = cursor.fetchall()
            gone += len(rows)
            unread_events = [row[0] for row in rows if row[1] is None]
            if unread_events:
                marks_u = ", ".join(["%s"] * len(unread_events))
                cursor.execute(
                    f"SELECT stream_id, COUNT(*) FROM {event} WHERE id IN ({marks_u}) "
                    "GROUP BY stream_id",
                    unread_events,
                )
                for stream_id, n in cursor.fetchall():
                    unread[stream_id] = unread.get(stream_id, 0) + n
            cursor.execute(f"DELETE FROM {event} WHERE id IN ({marks}) RETURNING stream_id", chunk)
            touched.update(row[0] for row in cursor.fetchall())
        ids = sorted(touched)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            minus = " ".join(f"WHEN {k:d} THEN {v:d}" for k, v in unread.items() if k in chunk)
            cursor.execute(
                f"UPDATE {stream} SET first_seq = COALESCE("
                f"(SELECT MIN(e.seq) FROM {event} e WHERE e.stream_id = {stream}.id), "
                "last_seq + 1)"
                + (f", unread = unread - CASE id {minus} ELSE 0 END" if minus else "")
                + f" WHERE id IN ({marks})",
                chunk,
            )
    return len(doomed), gone
