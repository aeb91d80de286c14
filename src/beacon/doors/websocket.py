"""WebSocket consumers: thin glue between the protocol, the streams and the hub.

:class:`BeaconConsumer` serves ``ws/``: one socket per tab, many subscriptions.
:class:`NotificationConsumer` serves the guide's ``ws/notifications/``: the same
socket, subscribed at connect to the user's own stream (resuming from
``?epoch=E&since=N``), whose notification frames are the guide's
``{"type": "notification", "message": …}`` plus ``stream``/``seq``/``epoch``.

A consumer has no channel-layer channel of its own (its ``__call__`` sets none up):
the hub receives each event once per process and offers it to the socket's
:class:`~beacon.fanout.outbox.Outbox`, which sends it at once, queues it, or closes a
socket that cannot keep up (4013). The consumer keeps the socket's lifecycle and its
frame handling; the outbox, everything that goes out to it.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .. import eventlog, metrics, shutdown
from ..conf import get_config
from ..db import database_call
from ..exceptions import Forbidden, ProtocolError, StreamError
from ..fanout.consumer import HubConsumer
from ..fanout.hub import Hub, get_hub
from ..fanout.outbox import Outbox, Track
from ..identity.control import get_registry
from ..identity.core import Identity
from ..protocol import (
    ClientFrame,
    CloseCode,
    ErrorCode,
    Ping,
    Publish,
    Read,
    Subscribe,
    Typing,
    Unsubscribe,
    ack_frame,
    error_frame,
    parse_client_frame,
    pong_frame,
    subscribed_frame,
    unsubscribed_frame,
    utf8_size,
    welcome_frame,
)
from ..ratelimit import TokenBucket
from ..sequencing import replay_continues, resume_point
from ..streams import StreamPolicy, parse_stream, policy_for, user_stream
from .wire import wire_for

log = logging.getLogger("beacon.consumers")


@dataclass(eq=False, slots=True, kw_only=True)
class Subscription(Track):
    """A stream the socket subscribes to: its policy and key, and where delivery is."""

    policy: StreamPolicy
    key: str


class BeaconConsumer(HubConsumer):
    hub: Hub
    user: Any
    subscriptions: dict[str, Subscription]
    outbox: Outbox[Subscription]
    active = False  # accepted, signed in, attached to the hub

    # -- lifecycle -----------------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.config = get_config()
        wire = wire_for(self.base_send)
        self.outbox = Outbox(
            self._send_text,
            self._close,
            queue_size=self.config["SOCKET_QUEUE_SIZE"],
            page_size=self.config["REPLAY_PAGE_SIZE"],
            max_bytes=self.config["SOCKET_MAX_BYTES"],
            owed=wire.owed if wire is not None else None,
            close_now=wire.close_now if wire is not None else None,
        )
        #: The outbox delivers to what the consumer subscribes: one dict, shared.
        self.subscriptions = self.outbox.tracks
        self.user = self.scope.get("user")
        await self.accept()
        if shutdown.install() and shutdown.draining():
            metrics.rejected_handshake("draining")
            await self.close_with(CloseCode.SERVER_RESTART)
            return
        if self.user is None or not self.user.is_authenticated:
            metrics.rejected_handshake("unauthenticated")
            code = self.scope.get("beacon.refused") or CloseCode.UNAUTHENTICATED
            await self.close_with(CloseCode(int(code)))
            return
        self.identity = self.scope.get("beacon.identity") or Identity(self.user, "scope")
        self.registry = get_registry()
        if not await self.registry.admit(self):
            await self.close_with(CloseCode.TOO_MANY_CONNECTIONS)
            return
        self.user_bucket = self.registry.user_bucket(self)
        self.bucket = TokenBucket(
            rate=self.config["RATE_LIMIT_PER_SECOND"], burst=self.config["RATE_LIMIT_BURST"]
        )
        self.outbox.bucket = self.bucket
        self.hub = get_hub()
        # Counted before the first await: whatever ends the socket from here on,
        # ``teardown`` undoes exactly this.
        self.active = True
        metrics.connection_opened()
        await self.hub.attach(self.outbox)
        await self.send(
            welcome_frame(
                user_id=self.user.pk,
                heartbeat=self.config["HEARTBEAT_SECONDS"],
                max_frame=self.config["MAX_FRAME_BYTES"],
            )
        )
        await self.on_open()

    async def on_open(self) -> None:
        """Hook for subclasses: runs once the socket is accepted and authenticated."""

    async def teardown(self) -> None:
        """Detach from the hub, the identity registry, the metrics and presence: once,
        whatever ends the socket.

        Each step runs even if an earlier one fails, so a Redis that is down cannot
        leave the socket counted or listed in the hub.
        """
        if not self.active:
            return
        self.active = False
        self.outbox.stop()
        metrics.connection_closed()
        try:
            await self.hub.detach(self.outbox)
        except Exception:
            log.exception("beacon: detaching a socket from the hub failed")
        try:
            await self.registry.remove(self)
        except Exception:
            log.exception("beacon: leaving the identity registry failed")
        subscriptions = list(self.subscriptions.values())
        self.subscriptions.clear()
        for sub in subscriptions:
            await self._left(sub)

    async def _left(self, sub: Subscription) -> None:
        try:
            await sub.policy.left(self, sub.key)
        except Exception:
            log.exception("beacon: %s's left() hook failed", type(sub.policy).__name__)

    @property
    def closing(self) -> bool:
        return self.outbox.closing

    async def close_with(self, code: CloseCode) -> None:
        """Close once, with a documented code (through the outbox: one close path)."""
        await self.outbox.close(code)

    async def _send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def _close(self, code: int) -> None:
        await self.close(code=code)  # autobahn takes ints only

    # -- incoming frames -----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.active or self.closing:
            return
        size = utf8_size(text_data) if text_data is not None else len(bytes_data or b"")
        if size > self.config["MAX_FRAME_BYTES"]:
            await self.close_with(CloseCode.FRAME_TOO_LARGE)
            return
        if not self.bucket.take(time.monotonic()):
            await self.send(error_frame(ErrorCode.RATE_LIMITED, "too many frames"))
            await self.close_with(CloseCode.RATE_LIMITED)
            return
        frame: ClientFrame | None = None
        try:
            if text_data is None:
                raise ProtocolError(ErrorCode.BAD_FRAME, "binary frames are not supported")
            frame = parse_client_frame(text_data, max_depth=self.config["MAX_JSON_DEPTH"])
            await self.handle(frame)
        except ProtocolError as exc:
            metrics.error(exc.code)
            ref = exc.ref if exc.ref is not None or frame is None else frame.ref
            await self.send(error_frame(exc.code, exc.message, ref=ref, stream=exc.stream))
        except Exception as exc:
            # The stack, not the exception's text: that may quote the client's frame.
            log.error(
                "beacon: %s while handling a client frame\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            metrics.error(ErrorCode.INTERNAL)
            await self.send(error_frame(ErrorCode.INTERNAL, "internal error"))

    async def handle(self, frame: ClientFrame) -> None:
        if isinstance(frame, (Read, Publish, Typing)) and not self.user_bucket.take(
            time.monotonic()
        ):  # the budget all of the user's sockets share: refuse the frame, keep the socket
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, "too many frames from this user", ref=frame.ref
            )
        match frame:
            case Subscribe():
                await self.subscribe(frame)
            case Unsubscribe():
                await self.unsubscribe(frame)
            case Ping():
                await self.send(pong_frame(ref=frame.ref))
            case Read():
                await self.mark_read(frame)
            case Publish():
                await self.publish(frame)
            case Typing():
                await self.typing(frame)

    def _policy(self, stream: str, ref: Any) -> tuple[StreamPolicy, str]:
        try:
            parse_stream(stream)
        except StreamError as exc:
            raise ProtocolError(
                ErrorCode.INVALID_STREAM, str(exc), ref=ref, stream=stream[:100]
            ) from None
        try:
            policy, key = policy_for(stream)
        except StreamError as exc:
            raise ProtocolError(
                ErrorCode.UNKNOWN_STREAM, str(exc), ref=ref, stream=stream
            ) from None
        if not policy.is_canonical(key):
            raise ProtocolError(
                ErrorCode.INVALID_STREAM,
                "not the canonical name of its stream",
                ref=ref,
                stream=stream,
            )
        return policy, key

    # -- subscribe, resume, unsubscribe --------------------------------------------------------

    async def subscribe(self, frame: Subscribe) -> None:
        stream = frame.stream
        policy, key = self._policy(stream, frame.ref)
        existing = self.subscriptions.get(stream)
        if existing is not None:
            await self._resubscribe(existing, frame)
            return
        if len(self.subscriptions) >= self.config["MAX_SUBSCRIPTIONS"]:
            raise ProtocolError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                "subscription limit reached",
                ref=frame.ref,
                stream=stream,
            )
        prepared = await database_call(_prepare_subscription)(
            policy, key, self.user, stream, frame.epoch, frame.since
        )
        if prepared is None:
            raise Forbidden(stream, "subscribe to", ref=frame.ref)
        position, state, (after, recovered, reason), replay = prepared
        sub = Subscription(stream=stream, policy=policy, key=key, epoch=position.epoch, last=after)
        async with sub.lock:
            self.subscriptions[stream] = sub
            await self.hub.add(stream, self.outbox, position.last_seq, position.epoch)
            await self.send(
                subscribed_frame(
                    stream=stream,
                    epoch=position.epoch,
                    seq=position.last_seq,
                    recovered=recovered,
                    reason=reason,
                    state=state,
                    ref=frame.ref,
                )
            )
            if frame.since is not None:
                metrics.resume(recovered)
            if replay is not None:
                await self.outbox.send_rows(sub, replay, paced=True)
                if len(replay) >= self.config["REPLAY_PAGE_SIZE"]:
                    await self.outbox.catch_up(sub, None, paced=True)
            # An event that committed after the position read and reached the hub
            # before this socket joined it was offered to the stream's other sockets
            # only, and the hub counts it as known: bring it from the log now.
            known = self.hub.known.get(stream, 0)
            if known > sub.last:
                await self.outbox.catch_up(sub, known)
        await policy.joined(self, key)

    async def _resubscribe(self, sub: Subscription, frame: Subscribe) -> None:
        """Subscribing again to a stream the socket has changes nothing: say where it is.

        No replay (everything after the first subscribe's resume point was or will be
        sent once on this socket) and no ``left``/``joined`` (presence stays as it is).
        """
        async with sub.lock:
            await self.send(
                subscribed_frame(
                    stream=sub.stream, epoch=sub.epoch, seq=sub.last, recovered=True, ref=frame.ref
                )
            )

    def _subscription(self, stream: str, ref: Any) -> Subscription:
        sub = self.subscriptions.get(stream)
        if sub is None:
            raise ProtocolError(
                ErrorCode.NOT_SUBSCRIBED, "not subscribed", ref=ref, stream=stream[:100]
            )
        return sub

    async def unsubscribe(self, frame: Unsubscribe) -> None:
        sub = self._subscription(frame.stream, frame.ref)
        del self.subscriptions[frame.stream]
        await self.hub.remove(frame.stream, self.outbox)
        await self._left(sub)
        await self.send(unsubscribed_frame(stream=frame.stream, ref=frame.ref))

    async def revoked(self, stream: str) -> None:
        """The stream's policy said no on re-asking (``beacon.identity.revoke``)."""
        sub = self.subscriptions.pop(stream, None)
        if sub is None or self.closing:
            return
        await self.hub.remove(stream, self.outbox)
        await self._left(sub)
        await self.send(unsubscribed_frame(stream=stream, reason=ErrorCode.FORBIDDEN))

    # -- read state, publish, typing ---------------------------------------------------------

    async def mark_read(self, frame: Read) -> None:
        policy, key = self._policy(frame.stream, frame.ref)
        done = await database_call(_mark_read)(policy, key, self.user, frame)
        if not done:
            raise Forbidden(frame.stream, "mark read", ref=frame.ref)
        await self.send(ack_frame(ref=frame.ref, op="read", stream=frame.stream))

    async def publish(self, frame: Publish) -> None:
        """Client publishes are for streams whose policy allows them (chat rooms)."""
        policy, key = self._policy(frame.stream, frame.ref)
        result = await database_call(_client_publish)(policy, key, self.user, frame)
        await self.send(
            ack_frame(
                ref=frame.ref,
                op="publish",
                stream=frame.stream,
                seq=result.seq,
                client_id=frame.client_id,
            )
        )

    async def typing(self, frame: Typing) -> None:
        sub = self._subscription(frame.stream, frame.ref)
        await sub.policy.typing(self, sub.key)


class NotificationConsumer(BeaconConsumer):
    """The guide's ``ws/notifications/``: the user's own stream, resumable by query."""

    async def on_open(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        since = query.get("since", [""])[0]
        epoch = query.get("epoch", [""])[0]
        stream = user_stream(self.user)
        # isdigit() alone takes "²" and "①", which int() refuses.
        digits = since.isascii() and since.isdigit()
        if (since and not digits) or len(since) > 18 or len(epoch) > 64:
            await self.send(
                error_frame(
                    ErrorCode.BAD_FRAME, "'since' must be a non-negative integer", stream=stream
                )
            )
            return
        try:
            await self.subscribe(
                Subscribe(stream=stream, since=int(since) if since else None, epoch=epoch or None)
            )
        except ProtocolError as exc:
            await self.send(error_frame(exc.code, exc.message, stream=exc.stream))


def _prepare_subscription(
    policy: StreamPolicy,
    key: str,
    user: Any,
    stream: str,
    client_epoch: str | None,
    since: int | None,
) -> (
    tuple[
        eventlog.Position,
        dict[str, Any] | None,
        tuple[int, bool, str | None],
        list[tuple[int, str]] | None,
    ]
    | None
):
    """Authorize, read the position and the policy's state, and the replay of a resume:
    one trip to a database thread. ``None`` if the policy refuses."""
    if not policy.can_subscribe(user, key):
        return None
    position = eventlog.position(stream)
    assert position is not None
    after, recovered, reason = resume_point(
        client_epoch=client_epoch,
        since=since,
        epoch=position.epoch,
        last_seq=position.last_seq,
        first_kept=position.first_seq,
    )
    replay: list[tuple[int, str]] | None = None
    if since is not None and recovered:
        # Read before answering: ``beacon_prune`` may have moved the log's start since
        # the position was read, and "recovered" must mean everything.
        replay = eventlog.events_after(stream, after)
        if not replay_continues(after, replay[0][0] if replay else None, position.last_seq):
            after, recovered, reason, replay = position.last_seq, False, "retention", None
    state = policy.subscribe_state_at(user, key, position)
    return position, state, (after, recovered, reason), replay


def _mark_read(policy: StreamPolicy, key: str, user: Any, frame: Read) -> bool:
    """Mark read if the policy allows it; False if it does not."""
    if not policy.can_read(user, key):
        return False
    policy.mark_read(user, key, seq=frame.seq, up_to=frame.up_to)
    return True


def _client_publish(policy: StreamPolicy, key: str, user: Any, frame: Publish) -> Any:
    if not policy.can_publish(user, key):
        raise Forbidden(frame.stream, "publish to", ref=frame.ref)
    return policy.publish(user, key, frame)
