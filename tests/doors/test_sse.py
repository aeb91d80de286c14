"""The SSE front door (``/beacon/events/``), driven in process through its ASGI interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.models import AnonymousUser

from beacon import eventlog, notify, publish
from beacon.doors.sse import EventStream
from beacon.fanout.hub import get_hub
from beacon.identity.control import CONTROL_STREAM
from beacon.models import Event as EventRow
from beacon.models import Stream
from beacon.protocol import CloseCode
from beacon.streams import StreamPolicy, _policies, register, user_stream

from ..sseclient import Event, Parser

pytestmark = pytest.mark.django_db(transaction=True)


#: Keys of ``feed:`` that nobody may subscribe to any more (a test revokes them).
REVOKED: set[str] = set()


class FeedPolicy(StreamPolicy):
    """``feed:KEY``: anyone signed in, except ``feed:secret`` and revoked keys."""

    def can_subscribe(self, user: Any, key: str) -> bool:
        return bool(user.is_authenticated) and key != "secret" and key not in REVOKED


@pytest.fixture(autouse=True)
def feed_policy() -> Iterator[None]:
    register("feed", FeedPolicy)
    yield
    _policies.pop("feed", None)
    REVOKED.clear()


class Reader:
    """One SSE request to the app, read event by event."""

    def __init__(
        self, user: Any, query: list[tuple[str, str]], headers: list[Any], app: Any = None
    ) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/beacon/events/",
            "query_string": urlencode(query).encode(),
            "headers": headers,
        }
        if app is None:  # the user put in the scope, as by other middleware
            scope["user"] = user
        self.communicator = ApplicationCommunicator(app or EventStream(), scope)
        self.parser = Parser()
        self.events: list[Event] = []
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.done = False

    async def start(self) -> Reader:
        await self.communicator.send_input({"type": "http.request", "body": b""})
        start = await self.communicator.receive_output(3)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = dict(start["headers"])
        return self

    async def next(self, timeout: float = 3, comments: bool = False) -> Event:
        while True:
            while self.events:
                event = self.events.pop(0)
                if comments or event.data:  # not a comment, not the lone retry
                    return event
            if self.done:
                raise AssertionError("the response ended")
            message = await self.communicator.receive_output(timeout)
            self.body += message.get("body", b"")
            self.events.extend(self.parser.feed(message.get("body", b"")))
            self.done = not message.get("more_body", False)

    async def until(self, name: str, timeout: float = 3) -> Event:
        while True:
            event = await self.next(timeout)
            if event.event == name:
                return event

    async def json_body(self) -> Any:
        message = await self.communicator.receive_output(3)
        return json.loads(message["body"])

    async def disconnect(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})
        with contextlib.suppress(Exception):
            await self.communicator.wait(3)


@contextlib.asynccontextmanager
async def reading(
    user: Any, *streams: str, last_id: str | None = None, query_id: str | None = None
) -> AsyncIterator[Reader]:
    query = [("stream", s) for s in streams]
    if query_id is not None:
        query.append(("last_event_id", query_id))
    headers = [(b"last-event-id", last_id.encode())] if last_id is not None else []
    reader = await Reader(user, query, headers).start()
    try:
        yield reader
    finally:
        await reader.disconnect()


async def subscribed(reader: Reader, count: int) -> list[Event]:
    return [await reader.until("subscribed") for _ in range(count)]


async def test_live_events_carry_their_type_their_frame_and_an_id_of_all_streams(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with reading(alice, stream, "feed:news") as reader:
        assert reader.status == 200
        assert reader.headers[b"content-type"].startswith(b"text/event-stream")
        assert reader.headers[b"x-accel-buffering"] == b"no"
        first = await reader.next(comments=True)
        assert first.retry is not None and 2000 <= first.retry <= 4000
        subs = await subscribed(reader, 2)
        assert [s.json["stream"] for s in subs] == [stream, "feed:news"]
        assert subs[0].json["state"] == {"unread": 0}
        epochs = [s.json["epoch"] for s in subs]
        assert subs[1].id == f"{stream}@{epochs[0]}:0,feed:news@{epochs[1]}:0"
        await db_call(notify, alice, "hello")
        event = await reader.until("notification")
        assert event.json["message"] == "hello"
        assert event.id == f"{stream}@{epochs[0]}:1,feed:news@{epochs[1]}:0"
        await db_call(publish, "feed:news", "story", {"title": "t"})
        event = await reader.until("story")
        assert (event.json["seq"], event.json["title"]) == (1, "t")
        assert event.id == f"{stream}@{epochs[0]}:1,feed:news@{epochs[1]}:1"


async def test_last_event_id_replays_what_every_stream_missed_in_order_then_goes_live(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    stream = user_stream(alice)
    async with reading(alice, stream, "feed:news") as reader:
        await subscribed(reader, 2)
        await db_call(notify, alice, "one")
        last = (await reader.until("notification")).id
    for n in ("two", "three"):
        await db_call(notify, alice, n)
    for n in range(1, 4):
        await db_call(publish, "feed:news", "story", {"n": n})
    async with reading(alice, stream, "feed:news", last_id=last) as reader:
        got = [await reader.next() for _ in range(7)]
        assert [(e.event, e.json["stream"], e.json["seq"]) for e in got] == [
            ("subscribed", stream, 3),
            ("notification", stream, 2),
            ("notification", stream, 3),
            ("subscribed", "feed:news", 3),
            ("story", "feed:news", 1),
            ("story", "feed:news", 2),
            ("story", "feed:news", 3),
        ]
        subs = [e for e in got if e.event == "subscribed"]
        assert [(s.json["recovered"], s.json.get("reason")) for s in subs] == [(True, None)] * 2
        await db_call(publish, "feed:news", "story", {"n": 4})
        live = await reader.until("story")
        assert live.json["n"] == 4
        assert await reader_has_nothing(reader)


async def reader_has_nothing(reader: Reader) -> bool:
    """Nothing more to read for a moment (``receive_nothing`` leaves the app running)."""
    assert not [e for e in reader.events if not e.comment], reader.events
    return bool(await reader.communicator.receive_nothing(0.3))


async def test_last_event_id_in_the_query_resumes_a_first_connect(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    for n in range(3):
        await db_call(publish, "feed:a", "story", {"n": n})
    epoch = (await db_call(eventlog.position, "feed:a")).epoch
    async with reading(alice, "feed:a", query_id=f"feed:a@{epoch}:1") as reader:
        sub = await reader.until("subscribed")
        assert sub.json["recovered"] is True
        event = await reader.next()
        assert (event.json["n"], event.id) == (1, f"feed:a@{epoch}:2")
        event = await reader.next()
        assert event.id == f"feed:a@{epoch}:3"


async def test_the_header_wins_over_the_query(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    for n in range(3):
        await db_call(publish, "feed:a", "story", {"n": n})
    epoch = (await db_call(eventlog.position, "feed:a")).epoch
    async with reading(
        alice, "feed:a", last_id=f"feed:a@{epoch}:2", query_id=f"feed:a@{epoch}:0"
    ) as reader:
        await reader.until("subscribed")
        assert (await reader.next()).json["seq"] == 3


async def test_a_resume_the_log_no_longer_reaches_says_retention(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    for n in range(4):
        await db_call(publish, "feed:a", "story", {"n": n})
    epoch = (await db_call(eventlog.position, "feed:a")).epoch

    def prune() -> None:
        EventRow.objects.filter(stream__name="feed:a", seq__lte=2).delete()
        Stream.objects.filter(name="feed:a").update(first_seq=3)

    await db_call(prune)
    async with reading(alice, "feed:a", last_id=f"feed:a@{epoch}:1") as reader:
        sub = await reader.until("subscribed")
        assert (sub.json["recovered"], sub.json["reason"]) == (False, "retention")
        assert sub.id == f"feed:a@{epoch}:4"  # the reader goes on from the stream's newest
        await db_call(publish, "feed:a", "story", {"n": 4})
        assert (await reader.next()).json["seq"] == 5


async def test_a_resume_from_another_epoch_says_epoch_changed(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    await db_call(publish, "feed:a", "story", {})
    async with reading(alice, "feed:a", last_id="feed:a@0ld0ld:1") as reader:
        sub = await reader.until("subscribed")
        assert (sub.json["recovered"], sub.json["reason"]) == (False, "epoch_changed")
        assert sub.id == f"feed:a@{sub.json['epoch']}:1"


async def test_a_stream_missing_from_the_id_starts_live(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    await db_call(publish, "feed:b", "story", {})
    epoch = (await db_call(eventlog.position, "feed:b")).epoch
    async with reading(alice, "feed:a", "feed:b", last_id=f"feed:b@{epoch}:1") as reader:
        subs = await subscribed(reader, 2)
        assert subs[1].id.startswith("feed:a@") and subs[1].id.endswith(f",feed:b@{epoch}:1")
        assert await reader_has_nothing(reader)


@pytest.mark.parametrize(
    ("streams", "last_id", "status", "code"),
    [
        ((), None, 400, "bad_frame"),
        (("nope",), None, 400, "invalid_stream"),
        (("nosuch:1",), None, 404, "unknown_stream"),
        (("feed:a", "feed:secret"), None, 403, "forbidden"),
        (("feed:a",), "garbage", 400, "bad_event_id"),
        (tuple(f"feed:{i}" for i in range(17)), None, 400, "too_many_subscriptions"),
    ],
)
async def test_bad_requests_are_refused_with_json_before_the_stream_starts(
    make_user: Any,
    db_call: Any,
    streams: tuple[str, ...],
    last_id: str | None,
    status: int,
    code: str,
) -> None:
    alice = await db_call(make_user, "alice")
    reader = await Reader(
        alice,
        [("stream", s) for s in streams],
        [(b"last-event-id", last_id.encode())] if last_id else [],
    ).start()
    assert reader.status == status
    assert reader.headers[b"content-type"] == b"application/json"
    assert (await reader.json_body())["error"] == code
    assert not get_hub().connections


async def test_an_anonymous_reader_gets_401(db_call: Any) -> None:
    reader = await Reader(AnonymousUser(), [("stream", "feed:a")], []).start()
    assert reader.status == 401
    assert (await reader.json_body())["error"] == "unauthenticated"


async def test_other_methods_get_405(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    reader = Reader(alice, [("stream", "feed:a")], [])
    reader.communicator.scope["method"] = "POST"
    await reader.start()
    assert reader.status == 405


async def test_a_keep_alive_comment_comes_when_nothing_else_does(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    settings.BEACON = {"SSE_KEEPALIVE_SECONDS": 0.05}
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a") as reader:
        await reader.until("subscribed")
        event = await reader.next(comments=True)
        assert event.comment and event.data == ""
        assert b": keep-alive\n\n" in reader.body


async def test_closing_ends_the_response_with_a_close_event_and_leaves_the_hub(
    make_user: Any, db_call: Any
) -> None:
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a") as reader:
        await reader.until("subscribed")
        hub = get_hub()
        (outbox,) = hub.connections
        await outbox.close(CloseCode.SERVER_RESTART)
        close = await reader.until("close")
        assert close.json == {
            "type": "close",
            "code": 4012,
            "reason": "server_restart",
            "reconnect": True,
        }
        assert reader.done
        await reader.communicator.wait(3)
        assert not hub.connections and not hub.subscribers


async def test_a_final_close_says_not_to_reconnect(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a") as reader:
        await reader.until("subscribed")
        (outbox,) = get_hub().connections
        await outbox.close(CloseCode.UNAUTHENTICATED)
        close = await reader.until("close")
        assert (close.json["code"], close.json["reconnect"]) == (4001, False)


async def test_a_reader_that_goes_away_leaves_the_hub(make_user: Any, db_call: Any) -> None:
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a", "feed:b") as reader:
        await subscribed(reader, 2)
        hub = get_hub()
        assert set(hub.subscribers) - {CONTROL_STREAM} == {"feed:a", "feed:b"}
    assert not hub.connections and not hub.subscribers


async def test_a_gap_is_filled_from_the_log_in_order(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    """An event the layer lost (here: never dispatched) comes from the log before the next."""
    settings.BEACON = {"LOG_POLL_SECONDS": 60}
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a") as reader:
        await reader.until("subscribed")
        hub = get_hub()

        def append_quietly() -> eventlog.Appended:
            from django.db import transaction

            with transaction.atomic():
                return eventlog.append("feed:a", "story", {"n": 1})

        await db_call(append_quietly)  # in the log, never handed to the hub
        second = await db_call(publish, "feed:a", "story", {"n": 2})
        assert second.seq == 2
        got = [(await reader.next()).json["n"] for _ in range(2)]
        assert got == [1, 2]
        assert hub.known["feed:a"] == 2


async def test_a_reader_too_slow_for_its_queue_gets_close_4013_after_what_it_was_sent(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    """The server's send waits (a full TCP buffer); the backlog overflows; the response
    ends with ``close`` 4013 once the server can write again, and nothing after it."""
    settings.BEACON = {"SOCKET_QUEUE_SIZE": 2, "LOG_POLL_SECONDS": 60}
    alice = await db_call(make_user, "alice")
    sent: list[dict[str, Any]] = []
    writable = asyncio.Event()
    writable.set()
    subscribed_seen = asyncio.Event()
    disconnect = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        await writable.wait()
        sent.append(message)
        if b"event: subscribed" in message.get("body", b""):
            subscribed_seen.set()

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/beacon/events/",
        "query_string": b"stream=feed:a",
        "headers": [],
        "user": alice,
    }
    app = asyncio.ensure_future(EventStream()(scope, receive, send))
    try:
        await asyncio.wait_for(subscribed_seen.wait(), 3)
        writable.clear()  # the reader stops reading
        for n in range(6):
            await db_call(publish, "feed:a", "story", {"n": n})
        # Offered to the outbox once the hub has them (on Redis they come a moment later).
        async with asyncio.timeout(5):
            while get_hub().known.get("feed:a", 0) < 6:
                await asyncio.sleep(0.01)
        writable.set()
        await asyncio.wait_for(app, 5)
    finally:
        disconnect.set()
        app.cancel()
    bodies = b"".join(m.get("body", b"") for m in sent[1:])
    events = Parser().feed(bodies)
    assert events[-1].event == "close" and events[-1].json["code"] == 4013
    assert sent[-1]["more_body"] is False
    seqs = [e.json["seq"] for e in events if e.event == "story"]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 6


async def test_a_failure_of_beacons_own_ends_with_close_4011_not_a_500(
    make_user: Any, db_call: Any, monkeypatch: Any
) -> None:
    """The database is down, say: ``EventSource`` must come back, so no 5xx."""
    from beacon.doors import sse

    def broken(*args: Any) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(sse, "plan_streams", broken)
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a") as reader:
        assert reader.status == 200
        close = await reader.until("close")
        assert (close.json["code"], close.json["reconnect"]) == (4011, True)
        assert reader.done


# -- credentials: beacon.identity, as routing.http_application mounts it ------------------

BEARER = "beacon.identity.BearerTokenAuthenticator"


def identified() -> Any:
    from beacon.identity.middleware import IdentityMiddleware

    return IdentityMiddleware(EventStream(), originless_cookies=True)


async def open_with(headers: list[Any], *query: tuple[str, str]) -> Reader:
    return await Reader(None, [("stream", "feed:a"), *query], headers, identified()).start()


async def test_the_session_cookie_signs_in_without_an_origin_header(
    make_user: Any, db_call: Any
) -> None:
    """A same-origin ``EventSource`` request carries no ``Origin``: the cookie counts."""
    from ..servers import session_cookie

    alice = await db_call(make_user, "alice")
    cookie = await db_call(session_cookie, alice)
    reader = await open_with([(b"cookie", f"sessionid={cookie}".encode())])
    try:
        assert reader.status == 200
        assert (await reader.until("subscribed")).json["stream"] == "feed:a"
    finally:
        await reader.disconnect()
    nobody = await open_with([(b"cookie", b"sessionid=nonsense")])
    assert nobody.status == 401


async def test_a_ticket_signs_in_once(make_user: Any, db_call: Any) -> None:
    from beacon.identity.authenticators import issue_ticket

    alice = await db_call(make_user, "alice")
    ticket = await db_call(issue_ticket, alice, session_key=None, credential_expires=None)
    reader = await open_with([], ("ticket", ticket))
    try:
        assert reader.status == 200
        await reader.until("subscribed")
    finally:
        await reader.disconnect()
    again = await open_with([], ("ticket", ticket))
    assert again.status == 401 and (await again.json_body())["error"] == "unauthenticated"


async def test_a_bearer_token_signs_in_and_an_expired_one_gets_401_credential_expired(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    import time

    import jwt

    settings.BEACON = {"AUTHENTICATORS": [BEARER]}
    alice = await db_call(make_user, "alice")

    def token(lifetime: float) -> bytes:
        claims = {"user_id": alice.pk, "exp": time.time() + lifetime}
        return b"Bearer " + jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256").encode()

    reader = await open_with([(b"authorization", token(60))])
    try:
        assert reader.status == 200
        await reader.until("subscribed")
    finally:
        await reader.disconnect()
    expired = await open_with([(b"authorization", token(-5))])
    assert expired.status == 401
    assert (await expired.json_body())["error"] == "credential_expired"


async def test_logout_ends_the_response_with_close_4001(make_user: Any, db_call: Any) -> None:
    from beacon.identity import aend_sessions

    from ..servers import session_cookie

    alice = await db_call(make_user, "alice")
    cookie = await db_call(session_cookie, alice)
    reader = await open_with([(b"cookie", f"sessionid={cookie}".encode())])
    try:
        await reader.until("subscribed")
        await aend_sessions(session_keys=[cookie], reason="logout")
        close = await reader.until("close", timeout=10)
        assert (close.json["code"], close.json["reconnect"]) == (4001, False)
        assert reader.done
    finally:
        await reader.disconnect()


async def test_a_revoked_stream_is_unsubscribed_and_the_last_one_ends_with_4003(
    make_user: Any, db_call: Any
) -> None:
    from beacon.identity import arevoke

    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a", "feed:b") as reader:
        await subscribed(reader, 2)
        REVOKED.add("a")
        # Behind the scope's user (no identity middleware) the identity is "scope".
        await arevoke("feed:a")
        gone = await reader.until("unsubscribed", timeout=10)
        assert gone.json == {"type": "unsubscribed", "stream": "feed:a", "reason": "forbidden"}
        await db_call(publish, "feed:b", "story", {})
        event = await reader.until("story")
        assert event.id is not None and event.id.startswith("feed:b@")  # feed:a left the id
        REVOKED.add("b")
        await arevoke("feed:b")
        close = await reader.until("close", timeout=10)
        assert (close.json["code"], close.json["reconnect"]) == (4003, False)


async def test_past_the_users_connection_cap_a_request_gets_429(
    make_user: Any, db_call: Any, settings: Any
) -> None:
    settings.BEACON = {"MAX_CONNECTIONS_PER_USER": 1}
    alice = await db_call(make_user, "alice")
    async with reading(alice, "feed:a") as reader:
        await reader.until("subscribed")
        second = await Reader(alice, [("stream", "feed:a")], []).start()
        assert second.status == 429
        assert (await second.json_body())["error"] == "too_many_connections"
