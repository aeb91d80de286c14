"""The asyncio client: one WebSocket, many resumable subscriptions, reconnecting by itself.

Theory of operation (the same as ``beacon.js``; see docs/client-python.md):

* One task (``_run``) owns the socket. It opens it (fetching a fresh ticket or token
  first), reads frames until the socket ends, then decides in one place: a final close
  (4001, 4003, an HTTP 401/403 handshake) ends the client with a :class:`Closed`
  exception; anything else waits ``backoff_delay(attempt)`` (full jitter, 0.5 s → 20 s)
  and opens again. Silence for two heartbeat intervals counts as a dead socket.
* Each :class:`Subscription` keeps a :class:`StreamPosition`. After every ``welcome``
  each subscription is sent again with its ``(epoch, since)``; events whose seq is not
  newer are dropped, so the caller sees each durable event once, in order. An event of
  another epoch is dropped and the subscription sent again, so the server says what
  happened (``recovered: false``, ``epoch_changed``) instead of the client splicing two
  histories. Whenever the server cannot bring a subscription up to date, the caller is
  told: ``subscription.recovered``, the ``on_subscribed`` callback, and a
  :class:`Subscribed` item in the subscription's iteration, in stream order.
* Requests (``publish``, ``read``, ``ping``) carry an ``id`` the reply echoes as
  ``ref``. A request whose socket dropped before the reply is sent again on the next
  socket: ``publish`` carries a ``client_id``, so the server stores it once and acks
  the first seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random as _random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin

from beacon.protocol import FINAL_CLOSE_CODES, CloseCode

from .credentials import Credentials, Fetch, http_origin, refusal
from .exceptions import (
    ClientClosed,
    ClientError,
    Closed,
    Forbidden,
    Refused,
    RequestTimeout,
    Unauthenticated,
)
from .position import (
    CREDENTIAL_EXPIRED,
    MAX_DELAY,
    MIN_DELAY,
    StreamPosition,
    Verdict,
    backoff_delay,
    reconnect_attempt,
)
from .subscription import Ack, Bell, Event, Subscribed, Subscription

log = logging.getLogger("beacon.client")

State = Literal["disconnected", "connecting", "connected"]

#: Frame types that are not events of a stream (``presence`` is: it is handed over).
CONTROL = frozenset({"welcome", "subscribed", "unsubscribed", "pong", "ping", "ack", "error"})

#: Close codes after which a request that was sent must not be sent again.
TOO_LARGE = frozenset({int(CloseCode.FRAME_TOO_LARGE), 1009})

REASONS = {
    1000: "connection closed",
    1001: "server going away",
    1006: "connection lost",
    1009: "frame too large",
    1011: "server error",
    4001: "not signed in",
    4003: "not allowed",
    4008: "rate limited",
    4009: "frame too large",
    4011: "server error",
    4012: "server restarting",
    4013: "connection too slow",
    4401: "credential expired",
    4429: "too many connections",
}


@dataclass(eq=False)
class _Request:
    frame: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    sent: bool = False


@dataclass(eq=False)
class _Socket:
    ws: ClientConnection
    welcomed: bool = False
    heartbeat: float | None = None
    subscribe_refs: dict[int, Subscription] = field(default_factory=dict)
    #: Ids of the unsubscribes a resync sent; their answers are not news.
    resync_refs: set[int] = field(default_factory=set)


class Client:
    """A Beacon client over one WebSocket to ``ws/``.

    Give at most one credential: ``cookie`` (a ``Cookie`` header such as
    ``"sessionid=…"``), ``ticket`` (an async callable returning a fresh single-use
    ticket, called before every connect) or ``token`` (a bearer token, or an async
    callable returning one, called before every connect). ``origin`` is the ``Origin``
    header (by default the URL's own host, which Beacon's origin check accepts); pass
    ``""`` to send none.

    Use as ``async with Client(url, ...) as client:`` or ``await client.connect()`` /
    ``await client.close()``.
    """

    def __init__(
        self,
        url: str,
        *,
        cookie: str | None = None,
        ticket: Fetch | None = None,
        token: str | Fetch | None = None,
        origin: str | None = None,
        min_delay: float = MIN_DELAY,
        max_delay: float = MAX_DELAY,
        open_timeout: float = 10,
        request_timeout: float = 30,
        random: Callable[[], float] = _random.random,
        **connect_options: Any,
    ) -> None:
        if sum(x is not None for x in (cookie, ticket, token)) > 1:
            raise ValueError("give one of cookie, ticket, token")
        self.url = url
        self.credentials = Credentials(cookie=cookie, ticket=ticket, token=token)
        self.origin = http_origin(url) if origin is None else origin
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.open_timeout = open_timeout
        self.request_timeout = request_timeout
        self.random = random
        self.connect_options = connect_options
        self.state: State = "disconnected"
        #: The user id from the latest ``welcome``.
        self.user: Any = None
        #: The server's ``max_frame`` from the latest ``welcome``.
        self.max_frame: int | None = None
        #: How many sockets were opened and welcomed (1 until the first reconnect).
        self.connections = 0
        self.subscriptions: dict[str, Subscription] = {}
        self._requests: dict[int, _Request] = {}
        self._ids = itertools.count(1)
        self._socket: _Socket | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._welcomed: asyncio.Future[None] | None = None
        self._closed: Closed | None = None
        self._wake = asyncio.Event()
        #: Rung whenever a subscription gets an item (``merge`` waits on it).
        self.bell = Bell()

    # -- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> Client:
        """Start, and wait for the first ``welcome``; raises :class:`Closed` if refused.

        Network failures are retried with backoff, for as long as it takes: wrap the
        call in ``asyncio.timeout`` to bound it.
        """
        if self._run_task is None:
            self._welcomed = asyncio.get_running_loop().create_future()
            self._run_task = asyncio.get_running_loop().create_task(self._run())
        assert self._welcomed is not None
        await asyncio.shield(self._welcomed)
        return self

    async def close(self) -> None:
        """Close the socket for good; subscriptions end, pending requests fail."""
        task, self._run_task = self._run_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._finish(ClientClosed())

    async def wait_closed(self) -> None:
        """Wait until the client stops by itself; raises why (:class:`Closed`)."""
        if self._run_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._run_task)
        if self._closed is not None and not isinstance(self._closed, ClientClosed):
            raise self._closed

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def reconnect_now(self) -> None:
        """If waiting to reconnect, stop waiting."""
        if self.state == "connecting" and self._socket is None:
            self._wake.set()

    # -- public API ------------------------------------------------------------------------

    async def subscribe(
        self,
        stream: str,
        *,
        epoch: str | None = None,
        since: int | None = None,
        on_subscribed: Callable[[Subscribed], object] | None = None,
    ) -> Subscription:
        """Follow ``stream``; returns once the server confirmed (raises :class:`Refused`).

        Without ``since`` the subscription starts live from now; with ``since`` (and the
        ``epoch`` it belongs to) the server first replays every event after it.
        ``on_subscribed`` is called with each :class:`Subscribed` (every reconnect).
        """
        self._check_open()
        if stream in self.subscriptions:
            raise ValueError(f"already subscribed to {stream}")
        sub = Subscription(self, stream, StreamPosition(epoch=epoch, since=since), on_subscribed)
        self.subscriptions[stream] = sub
        socket = self._socket
        if socket is not None and socket.welcomed:
            await self._send_subscribe(socket, sub)
        try:
            await asyncio.shield(sub._first)
        except BaseException:
            if self.subscriptions.get(stream) is sub:
                del self.subscriptions[stream]
                sub._end(None)
            raise
        return sub

    async def publish(
        self,
        stream: str,
        type: str,
        data: dict[str, Any],
        *,
        client_id: str | None = None,
        timeout: float | None = None,
    ) -> Ack:
        """Publish an event to a stream that takes client publishes; waits for the ``ack``.

        ``client_id`` (default: a new UUID) makes the publish idempotent: after a
        reconnect the same frame is sent again and the server stores it only once.
        """
        client_id = client_id or str(uuid.uuid4())
        frame = {"stream": stream, "type": type, "data": data, "client_id": client_id}
        reply = await self.request("publish", frame, timeout=timeout)
        return Ack(stream=stream, seq=int(reply["seq"]), client_id=client_id, frame=reply)

    async def read(
        self, stream: str, *, seq: int | None = None, up_to: int | None = None
    ) -> dict[str, Any]:
        """Mark one event (``seq``) or everything up to ``up_to`` read; returns the ack."""
        fields: dict[str, Any] = {"stream": stream}
        fields.update({"seq": seq} if up_to is None else {"up_to": up_to})
        return await self.request("read", fields)

    async def ping(self, *, timeout: float | None = None) -> dict[str, Any]:
        return await self.request("ping", {}, timeout=timeout)

    async def request(
        self, op: str, fields: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send ``op`` and wait for its reply; raises :class:`Refused` on an ``error``.

        While disconnected the request waits for the next socket; one that was sent but
        not answered when its socket dropped is sent again on the next one.
        """
        self._check_open()
        ident = next(self._ids)
        frame = {**fields, "op": op, "id": ident}
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        if self.max_frame is not None and len(text) > self.max_frame:
            raise Refused("frame_too_large", f"the frame is over {self.max_frame} characters")
        request = _Request(frame, asyncio.get_running_loop().create_future())
        self._requests[ident] = request
        try:
            socket = self._socket
            if socket is not None and socket.welcomed:
                await self._transmit(socket, request)
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                return await asyncio.shield(request.future)
        except TimeoutError:
            raise RequestTimeout(f"no answer to {op} in time") from None
        finally:
            self._requests.pop(ident, None)

    # -- the connection loop ----------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        try:
            while True:
                self._set_state("connecting")
                code, reason, welcomed = await self._connect_once()
                if code in FINAL_CLOSE_CODES:
                    error = Unauthenticated if code == CloseCode.UNAUTHENTICATED else Forbidden
                    raise error(code, reason)
                if code == CREDENTIAL_EXPIRED and isinstance(self.credentials.token, str):
                    # The same token would be refused again: only a callable refreshes it.
                    raise Unauthenticated(code, "the token expired (give a callable to renew it)")
                attempt = reconnect_attempt(attempt, code, welcomed=welcomed)
                delay = backoff_delay(
                    attempt, min_delay=self.min_delay, max_delay=self.max_delay, random=self.random
                )
                attempt += 1
                why = reason if code is None else f"{reason} ({code})"
                log.warning("beacon.client: %s; reconnecting in %.2f s", why, delay)
                self._wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        except Closed as exc:
            log.error("beacon.client: stopped: %s", exc)
            self._finish(exc)
        except Exception as exc:  # a bug here must not hang the caller
            log.exception("beacon.client: the connection loop failed")
            self._finish(Closed(None, f"the client failed: {exc!r}"))

    async def _connect_once(self) -> tuple[int | None, str, bool]:
        """Open one socket and serve it until it ends: ``(close code, reason, welcomed)``."""
        headers: dict[str, str] = {}
        try:
            url = await self.credentials.apply(self.url, headers)
        except Closed:
            raise  # the ticket endpoint refused: final
        except Exception as exc:  # the caller's ticket or token callable failed: retry
            return None, f"could not get a credential: {exc!r}", False
        try:
            ws = await ws_connect(
                url,
                origin=Origin(self.origin) if self.origin else None,
                additional_headers=headers,
                open_timeout=self.open_timeout,
                max_size=None,
                **self.connect_options,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            error = refusal(status, f"the handshake was refused with HTTP {status}")
            if isinstance(error, Closed):
                raise error from None
            return None, str(error), False
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return None, f"could not connect: {exc or type(exc).__name__}", False
        socket = _Socket(ws)
        self._socket = socket
        try:
            return await self._serve(socket)
        finally:
            self._socket = None
            await self._dropped(socket)

    async def _serve(self, socket: _Socket) -> tuple[int | None, str, bool]:
        ws = socket.ws
        while True:
            # Two missed server pings (plus slack) mean a dead socket.
            wait = socket.heartbeat * 2 + 1 if socket.heartbeat else self.open_timeout
            try:
                async with asyncio.timeout(wait):
                    text = await ws.recv()
            except TimeoutError:
                await ws.close()
                reason = "no heartbeat from the server" if socket.welcomed else "no welcome"
                return None, reason, socket.welcomed
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                reason = (exc.rcvd.reason if exc.rcvd else "") or REASONS.get(code, "closed")
                return code, reason, socket.welcomed
            if isinstance(text, str):
                await self._receive(socket, text)

    async def _dropped(self, socket: _Socket) -> None:
        """Tidy up after a socket: subscriptions wait for the next one, as do requests."""
        with contextlib.suppress(Exception):
            await socket.ws.close()
        for sub in self.subscriptions.values():
            if sub.status == "subscribed":
                sub.status = "pending"
        code = socket.ws.close_code
        for request in list(self._requests.values()):
            if request.sent and code in TOO_LARGE:
                _fail(request, Refused("frame_too_large", "the server refused the frame"))
            request.sent = False
        if self.state == "connected":
            self._set_state("connecting")

    def _finish(self, error: Closed) -> None:
        """The client stopped: end every subscription and request with ``error``."""
        if self._closed is None:
            self._closed = error
        self._set_state("disconnected")
        if self._welcomed is not None and not self._welcomed.done():
            self._welcomed.set_exception(error)
            self._welcomed.exception()
        ending: BaseException | None = None if isinstance(error, ClientClosed) else error
        for sub in list(self.subscriptions.values()):
            sub._end(ending)
        self.subscriptions.clear()
        for request in list(self._requests.values()):
            _fail(request, error)

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed
        if self._run_task is None:
            raise ClientError("call connect() first")

    def _set_state(self, state: State) -> None:
        if state != self.state:
            log.debug("beacon.client: %s -> %s", self.state, state)
            self.state = state

    # -- frames from the server -------------------------------------------------------------

    async def _receive(self, socket: _Socket, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            log.warning("beacon.client: a frame that is not JSON: %.80r", text)
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "welcome":
            await self._on_welcome(socket, frame)
        elif kind == "ping":
            return
        elif kind == "subscribed":
            self._on_subscribed(socket, frame)
        elif kind == "unsubscribed":
            self._on_unsubscribed(socket, frame)
        elif kind == "error":
            self._on_error(socket, frame)
        elif kind in ("ack", "pong"):
            self._settle(frame.get("ref"), frame, None)
        elif isinstance(kind, str) and isinstance(frame.get("stream"), str):
            await self._on_event(socket, frame, text)

    async def _on_welcome(self, socket: _Socket, frame: dict[str, Any]) -> None:
        socket.welcomed = True
        heartbeat = frame.get("heartbeat")
        socket.heartbeat = float(heartbeat) if isinstance(heartbeat, int | float) else None
        self.user = frame.get("user")
        max_frame = frame.get("max_frame")
        self.max_frame = max_frame if isinstance(max_frame, int) else None
        self.connections += 1
        self._set_state("connected")
        # Subscriptions first, then requests: a publish may depend on a subscribe.
        for sub in list(self.subscriptions.values()):
            if sub.status != "ended":
                await self._send_subscribe(socket, sub)
        for request in list(self._requests.values()):
            if not request.sent and not request.future.done():
                await self._transmit(socket, request)
        if self._welcomed is not None and not self._welcomed.done():
            self._welcomed.set_result(None)

    def _on_subscribed(self, socket: _Socket, frame: dict[str, Any]) -> None:
        ref = frame.get("ref")
        sub = socket.subscribe_refs.pop(ref, None) if isinstance(ref, int) else None
        if sub is None:  # the server's own news (an epoch change), or a stale answer
            sub = self.subscriptions.get(str(frame.get("stream")))
            if sub is None or sub.status != "subscribed" or ref is not None:
                return
        if sub.status == "ended" or self.subscriptions.get(sub.stream) is not sub:
            return
        outcome = sub.position.subscribed(frame)
        state = frame.get("state")
        info = Subscribed(
            stream=sub.stream,
            epoch=sub.position.epoch,
            seq=sub.position.last or 0,
            recovered=outcome.recovered,
            reason=outcome.reason,
            resumed=outcome.resumed,
            state=state if isinstance(state, dict) else None,
        )
        sub.status = "subscribed"
        sub.recovered, sub.reason, sub.state = info.recovered, info.reason, info.state
        if not info.recovered:
            log.warning(
                "beacon.client: %s not recovered (%s); continuing from seq %s",
                sub.stream,
                info.reason,
                info.seq,
            )
            sub._put(info)
        if not sub._first.done():
            sub._first.set_result(info)
        if sub.on_subscribed is not None:
            try:
                sub.on_subscribed(info)
            except Exception:
                log.exception("beacon.client: an on_subscribed callback failed")

    def _on_unsubscribed(self, socket: _Socket, frame: dict[str, Any]) -> None:
        ref = frame.get("ref")
        if ref in socket.resync_refs:
            socket.resync_refs.discard(ref)
            return
        if self._settle(ref, frame, None):
            return
        # Not an answer: the server ended the subscription (access revoked).
        sub = self.subscriptions.get(str(frame.get("stream")))
        if sub is not None:
            del self.subscriptions[sub.stream]
            reason = str(frame.get("reason") or "unsubscribed")
            sub._end(Refused(reason, "the server ended the subscription", stream=sub.stream))

    def _on_error(self, socket: _Socket, frame: dict[str, Any]) -> None:
        code = str(frame.get("code") or "error")
        error = Refused(
            code, str(frame.get("message") or code), stream=frame.get("stream"), frame=frame
        )
        ref = frame.get("ref")
        sub = socket.subscribe_refs.pop(ref, None) if isinstance(ref, int) else None
        if sub is not None:
            if self.subscriptions.get(sub.stream) is sub:
                del self.subscriptions[sub.stream]
            sub._end(error)
            return
        if not self._settle(ref, None, error):
            log.warning("beacon.client: server error: %s", error)

    async def _on_event(self, socket: _Socket, frame: dict[str, Any], text: str) -> None:
        sub = self.subscriptions.get(frame["stream"])
        if sub is None or sub.status != "subscribed":
            return
        verdict = sub.position.accept(frame)
        if verdict is Verdict.DUPLICATE:
            sub.duplicates += 1
            return
        if verdict is Verdict.STALE:
            await self._resync(socket, sub)
            return
        seq, epoch, ts = frame.get("seq"), frame.get("epoch"), frame.get("ts")
        data = {k: v for k, v in frame.items() if k not in ("type", "stream", "seq", "epoch", "ts")}
        sub._put(
            Event(
                type=frame["type"],
                stream=sub.stream,
                seq=seq if isinstance(seq, int) else None,
                epoch=epoch if isinstance(epoch, str) else None,
                ts=float(ts) if isinstance(ts, int | float) else None,
                data=data,
                raw=text,
            )
        )

    # -- frames to the server ---------------------------------------------------------------

    async def _send_subscribe(self, socket: _Socket, sub: Subscription) -> None:
        ident = next(self._ids)
        socket.subscribe_refs[ident] = sub
        sub.status = "pending"
        frame = {"op": "subscribe", "stream": sub.stream, **sub.position.resume_fields()}
        await self._send(socket, {**frame, "id": ident})

    async def _resync(self, socket: _Socket, sub: Subscription) -> None:
        """An event of another epoch: its seq means nothing next to ours. Ask afresh.

        Unsubscribe, then subscribe from our ``(epoch, since)`` (a second subscribe on
        the same socket would only confirm the subscription as it stands): the server
        answers ``recovered: false``, ``epoch_changed`` with the new position if the
        history really changed. Events that arrive meanwhile are dropped; the new
        subscription accounts for them.
        """
        sub.status = "pending"
        ident = next(self._ids)
        socket.resync_refs.add(ident)
        await self._send(socket, {"op": "unsubscribe", "stream": sub.stream, "id": ident})
        await self._send_subscribe(socket, sub)

    async def _transmit(self, socket: _Socket, request: _Request) -> None:
        request.sent = True
        await self._send(socket, request.frame)

    async def _send(self, socket: _Socket, frame: dict[str, Any]) -> None:
        # On a closed socket the reading side sees the close and reconnects.
        with contextlib.suppress(ConnectionClosed):
            await socket.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    async def _unsubscribe(self, sub: Subscription) -> None:
        if self.subscriptions.get(sub.stream) is not sub:
            return
        del self.subscriptions[sub.stream]
        sub._end(None)
        socket = self._socket
        if socket is not None and socket.welcomed and self._closed is None:
            with contextlib.suppress(ClientError):
                await self.request("unsubscribe", {"stream": sub.stream})

    def _settle(self, ref: Any, reply: dict[str, Any] | None, error: Exception | None) -> bool:
        request = self._requests.get(ref) if isinstance(ref, int) else None
        if request is None or request.future.done():
            return False
        if error is not None:
            _fail(request, error)
        else:
            assert reply is not None
            request.future.set_result(reply)
        return True


def _fail(request: _Request, error: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(error)
        request.future.exception()

