"""Server-Sent Events: ``GET /beacon/events/?stream=A&stream=B``, a plain ASGI app.

The second front door beside the WebSocket one, for one-way feeds, networks that
break WebSockets, and the browser's own ``EventSource``. A response is one more sink
of the hub, through the same :class:`~beacon.fanout.outbox.Outbox` (eager send,
bounded backlog, seq check, gap fill from the log, 4013 when too slow), so it keeps
the WebSocket's delivery rules. It is a plain ASGI app rather than a Django view: a
response lives as long as the reader does, and the outbox wants to push each frame
to the server's ``send`` itself, with nothing buffered in between.

A request is checked whole before anything is streamed — the user (the same scope
``user`` the WebSocket consumers read), every stream's name and policy, and the
resume id — and refused with a JSON answer (400, 401, 403, 404) if any check fails.
Then the response starts (200, ``text/event-stream``), sends ``retry:`` once, a
``subscribed`` event per stream (with ``recovered``/``reason`` as on the WebSocket),
what the reader missed, and then live events. Every durable event's ``id:`` holds
the position of *all* the response's streams (``beacon.eventstream``), so a reconnect
with ``Last-Event-ID`` resumes all of them. A response ends with a ``close`` event
carrying the same code a WebSocket would close with (4012 on drain, 4013 too slow,
4001 session ended...) and whether reconnecting helps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .. import eventlog, eventstream, metrics, shutdown
from ..conf import get_config
from ..db import database_call
from ..eventstream import Position
from ..exceptions import StreamError
from ..fanout.hub import Hub, get_hub
from ..fanout.outbox import Outbox, Track
from ..identity.control import get_registry
from ..identity.core import Identity
from ..protocol import FINAL_CLOSE_CODES, CloseCode, ErrorCode, dumps, subscribed_frame
from ..sequencing import replay_continues, resume_point
from ..streams import StreamPolicy, parse_stream, policy_for

log = logging.getLogger("beacon.sse")

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    # no-transform: a proxy that compresses would hold events back to fill a block.
    (b"cache-control", b"no-cache, no-transform"),
    # Nginx: do not buffer this response (proxy_buffering off, for this response only).
    (b"x-accel-buffering", b"no"),
]


class Refusal(Exception):
    """A request refused before its stream starts: a status and a JSON error."""

    def __init__(self, status: int, code: str, message: str, stream: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": code, "message": message}
        if stream is not None:
            self.body["stream"] = stream


@dataclass(eq=False, slots=True, kw_only=True)
class Plan:
    """One stream of a request, checked and read: where its response starts."""

    stream: str
    policy: StreamPolicy
    key: str
    position: eventlog.Position
    after: int
    recovered: bool
    reason: str | None
    resumed: bool
    state: dict[str, Any] | None
    replay: list[tuple[int, str]]


@dataclass(eq=False, slots=True, kw_only=True)
class Subscription(Track):
    """A stream the response follows (the outbox's track for it)."""

    policy: StreamPolicy
    key: str


def requested_streams(query: dict[str, list[str]], limit: int) -> list[str]:
    """The ``stream`` parameters, each once, in order; a ``Refusal`` if none or too many."""
    streams = list(dict.fromkeys(query.get("stream", [])))
    if not streams:
        raise Refusal(400, ErrorCode.BAD_FRAME, "name at least one stream: ?stream=user:7")
    if len(streams) > limit:
        raise Refusal(
            400, ErrorCode.TOO_MANY_SUBSCRIPTIONS, f"one response follows at most {limit} streams"
        )
    for stream in streams:
        try:
            parse_stream(stream)
        except StreamError as exc:
            raise Refusal(400, ErrorCode.INVALID_STREAM, str(exc), stream[:100]) from None
    return streams


def resume_positions(
    headers: dict[bytes, bytes], query: dict[str, list[str]]
) -> dict[str, Position]:
    """The reader's positions: ``Last-Event-ID`` (a reconnect), else ``?last_event_id=``."""
    raw = headers.get(b"last-event-id")
    text = raw.decode("latin-1") if raw is not None else query.get("last_event_id", [""])[0]
    try:
        return eventstream.parse_id(text.strip())
    except ValueError as exc:
        raise Refusal(400, "bad_event_id", str(exc)) from None


def plan_streams(user: Any, streams: list[str], positions: dict[str, Position]) -> list[Plan]:
    """Authorize every stream and read where each resumes (one trip to a thread)."""
    plans = []
    for stream in streams:
        try:
            policy, key = policy_for(stream)
        except StreamError as exc:
            raise Refusal(404, ErrorCode.UNKNOWN_STREAM, str(exc), stream) from None
        if not policy.is_canonical(key):
            raise Refusal(
                400, ErrorCode.INVALID_STREAM, "not the canonical name of its stream", stream
            )
        if not policy.can_subscribe(user, key):
            raise Refusal(403, ErrorCode.FORBIDDEN, f"not allowed to subscribe to {stream}", stream)
        position = eventlog.position(stream)
        assert position is not None
        held = positions.get(stream)
        after, recovered, reason = resume_point(
            client_epoch=held.epoch if held else None,
            since=held.seq if held else None,
            epoch=position.epoch,
            last_seq=position.last_seq,
            first_kept=position.first_seq,
        )
        replay: list[tuple[int, str]] = []
        if held is not None and recovered and after < position.last_seq:
            # Read before answering: a prune since the position was read must turn
            # into "retention", never into a silent gap.
            replay = eventlog.events_after(stream, after)
            if not replay_continues(after, replay[0][0] if replay else None, position.last_seq):
                after, recovered, reason, replay = position.last_seq, False, "retention", []
        plans.append(
            Plan(
                stream=stream,
                policy=policy,
                key=key,
                position=position,
                after=after,
                recovered=recovered,
                reason=reason,
                resumed=held is not None,
                state=policy.subscribe_state_at(user, key, position),
                replay=replay,
            )
        )
    return plans


class EventStream:
    """The ASGI app of ``/beacon/events/``; one :class:`Response` per request."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"EventStream serves HTTP, not {scope['type']!r}")
        await Response(scope, receive, send).run()


class Response:
    """One SSE response: checks, then the hub's sink until the reader or server ends it."""

    hub: Hub
    outbox: Outbox[Subscription]
    subscriptions: dict[str, Subscription]
    identity: Identity

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scope = scope
        self.receive = receive
        self.base_send = send
        self.config = get_config()
        self.user = scope.get("user")
        #: Where the reader is in each stream once it has read what was written so far.
        self.sent: dict[str, Position] = {}
        self.write_lock = asyncio.Lock()
        self.ended = asyncio.Event()
        self.started = False
        self.attached = False
        self.ending = False
        self.admitted = False
        self.subscriptions = {}

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        if self.scope.get("method") != "GET":
            await self.refuse(Refusal(405, "method_not_allowed", "use GET"))
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        headers = dict(self.scope.get("headers", ()))
        try:
            streams = requested_streams(query, self.config["SSE_MAX_STREAMS"])
            positions = resume_positions(headers, query)
            if shutdown.install() and shutdown.draining():
                metrics.rejected_handshake("draining")
                await self.start()
                await self.end(CloseCode.SERVER_RESTART)
                return
            if self.user is None or not self.user.is_authenticated:
                metrics.rejected_handshake("unauthenticated")
                if self.scope.get("beacon.refused") == CloseCode.CREDENTIAL_EXPIRED:
                    raise Refusal(401, "credential_expired", "get a new credential")
                raise Refusal(401, "unauthenticated", "sign in first")
            plans = await database_call(plan_streams)(self.user, streams, positions)
            self.identity = self.scope.get("beacon.identity") or Identity(self.user, "scope")
            self.registry = get_registry()
            if not await self.registry.admit(self):
                raise Refusal(
                    429, "too_many_connections", "this user has too many connections open"
                )
            self.admitted = True
        except Refusal as refusal:
            await self.refuse(refusal)
            return
        except Exception:
            await self.failed()
            return
        try:
            await self.follow(plans)
        except Exception:
            await self.failed()
        finally:
            await asyncio.shield(self.teardown())

    async def failed(self) -> None:
        """A failure of Beacon's own (the database is down, say): never a 500.

        The answer is a stream that ends at once with ``close`` 4011, so that
        ``EventSource`` comes back after ``retry:`` (a 5xx would stop it for good).
        """
        log.exception("beacon: an SSE response failed")
        metrics.error(ErrorCode.INTERNAL)
        with contextlib.suppress(Exception):
            if not self.started:
                await self.start()
            await self.end(CloseCode.INTERNAL_ERROR)

    async def refuse(self, refusal: Refusal) -> None:
        metrics.error(str(refusal.body["error"]))
        body = json.dumps(refusal.body).encode()
        await self.base_send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.base_send({"type": "http.response.body", "body": body})

    async def start(self) -> None:
        """Send the headers and ``retry:`` (jittered, so a restart's readers spread out)."""
        if self.started:
            return
        await self.base_send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        self.started = True
        base = int(self.config["SSE_RETRY_MS"])
        await self._write(eventstream.retry(random.randint(base, 2 * base)))

    async def follow(self, plans: list[Plan]) -> None:
        """Join the hub, send each stream's ``subscribed`` and replay, then wait for the end."""
        self.outbox = Outbox(
            self._send_text,
            self.end,
            queue_size=self.config["SOCKET_QUEUE_SIZE"],
            page_size=self.config["REPLAY_PAGE_SIZE"],
        )
        self.subscriptions = self.outbox.tracks
        for plan in plans:
            self.sent[plan.stream] = Position(plan.position.epoch, plan.after)
        await self.start()
        if self.ending:  # closed (an expired credential, say) before it began
            return
        self.hub = get_hub()
        await self.hub.attach(self.outbox)
        self.attached = True
        metrics.connection_opened()
        disconnected = asyncio.ensure_future(self._wait_disconnect())
        keepalive = asyncio.ensure_future(self._keepalive())
        try:
            for plan in plans:
                await self.subscribe(plan)
                if self.outbox.closing:
                    break
            await self.ended.wait()
        finally:
            for task in (disconnected, keepalive):
                task.cancel()

    async def subscribe(self, plan: Plan) -> None:
        sub = Subscription(
            stream=plan.stream,
            policy=plan.policy,
            key=plan.key,
            epoch=plan.position.epoch,
            last=plan.after,
        )
        async with sub.lock:
            self.subscriptions[plan.stream] = sub
            position = plan.position
            await self.hub.add(plan.stream, self.outbox, position.last_seq, position.epoch)
            frame = subscribed_frame(
                stream=plan.stream,
                epoch=plan.position.epoch,
                seq=plan.position.last_seq,
                recovered=plan.recovered,
                reason=plan.reason,
                state=plan.state,
            )
            await self._write(eventstream.event("subscribed", frame, self._id()))
            if plan.resumed:
                metrics.resume(plan.recovered)
            await self.outbox.send_rows(sub, plan.replay, paced=False)
            if len(plan.replay) >= self.outbox.page_size:
                await self.outbox.catch_up(sub, None)
            # An event that committed after the position was read and reached the hub
            # before this response joined it went to the stream's other sinks only.
            known = self.hub.known.get(plan.stream, 0)
            if known > sub.last:
                await self.outbox.catch_up(sub, known)

    async def _wait_disconnect(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.outbox.stop()
                self.ended.set()
                return

    async def _keepalive(self) -> None:
        """A comment every ``SSE_KEEPALIVE_SECONDS``, in line with the events (the outbox)."""
        while True:
            await asyncio.sleep(float(self.config["SSE_KEEPALIVE_SECONDS"]))
            self.outbox.offer(None, None, eventstream.comment("keep-alive"))

    async def teardown(self) -> None:
        if self.admitted:
            self.admitted = False
            try:
                await self.registry.remove(self)
            except Exception:
                log.exception("beacon: leaving the identity registry failed")
        if self.attached:
            self.attached = False
            self.outbox.stop()
            self.subscriptions.clear()
            try:
                await self.hub.detach(self.outbox)
            finally:
                metrics.connection_closed()
        if self.started and not self.ending:
            self.ending = True
            with contextlib.suppress(Exception):
                await self.base_send({"type": "http.response.body", "body": b""})

    # -- the way out -------------------------------------------------------------------

    def _id(self) -> str:
        return eventstream.encode_id(self.sent)

    async def _write(self, text: str) -> None:
        """One write to the server; the lock keeps ids in the order they are written."""
        async with self.write_lock:
            await self.base_send(
                {"type": "http.response.body", "body": text.encode(), "more_body": True}
            )

    async def _send_text(self, text: str) -> None:
        """The outbox's ``send``: a stored frame becomes an SSE event, a comment stays one."""
        if text.startswith(":"):
            await self._write(text)
            return
        fields = eventstream.frame_fields(text)
        if fields.stream is None:
            return  # the hub's heartbeat ping: the keep-alive comment does its work
        async with self.write_lock:
            id = None
            if fields.seq is not None and fields.stream in self.sent:
                epoch = fields.epoch or self.sent[fields.stream].epoch
                self.sent[fields.stream] = Position(epoch, fields.seq)
                id = self._id()
            body = eventstream.event(fields.type, text, id)
            await self.base_send(
                {"type": "http.response.body", "body": body.encode(), "more_body": True}
            )

    async def end(self, code: int) -> None:
        """End the response with a ``close`` event: the outbox's close, and shutdown's."""
        if self.ending:
            return
        self.ending = True
        if self.attached:
            self.outbox.stop()  # a send still waiting on a slow reader must not hold this up
        if not self.started:
            await self.start()
        code = CloseCode(code)
        data = dumps(
            {
                "type": "close",
                "code": int(code),
                "reason": code.name.lower(),
                "reconnect": code not in FINAL_CLOSE_CODES,
            }
        )
        try:
            async with self.write_lock:
                await self.base_send(
                    {
                        "type": "http.response.body",
                        "body": eventstream.event("close", data).encode(),
                        "more_body": False,
                    }
                )
        except Exception as exc:  # the reader is gone already
            log.debug("beacon: ending an SSE response failed: %s", exc)
        finally:
            self.ended.set()

    # -- what beacon.identity asks of a connection -------------------------------------

    async def close_with(self, code: CloseCode) -> None:
        """Close with a documented code (the registry's 4001 and 4401, or 4003)."""
        if self.attached:
            await self.outbox.close(code)
        else:
            await self.end(code)

    async def revoked(self, stream: str) -> None:
        """The stream's policy said no on re-asking: stop it; none left, end (4003)."""
        sub = self.subscriptions.pop(stream, None)
        if sub is None or self.outbox.closing:
            return
        await self.hub.remove(stream, self.outbox)
        self.sent.pop(stream, None)
        frame = dumps({"type": "unsubscribed", "stream": stream, "reason": ErrorCode.FORBIDDEN})
        await self._write(eventstream.event("unsubscribed", frame))
        if not self.subscriptions:
            await self.close_with(CloseCode.FORBIDDEN)
