"""The Pusher door: ``ws[s]://HOST/app/{key}?protocol=7``, one more sink of the hub.

A socket subscribes the hub to the Beacon stream of each channel it joins (``mapping``),
so what ``beacon.publish`` or the HTTP API stores reaches it, and what it receives it
reads as Pusher events. Frames leave through one ordered, bounded queue per socket;
the hub's offer never waits. Seqs are checked per stream: a duplicate (the log
watcher's overlap) is dropped, a gap is filled from the log first.

Presence and channel occupancy use Beacon's presence store (Redis across processes):
``member_added`` only for a user's first socket on a channel, ``member_removed`` only
for the last, and a killed process's members leave within the presence TTL.

Who a socket is: nobody until ``pusher:signin`` (a signature made by the user-auth
endpoint) names a user. Private and presence subscriptions carry their own proof (the
channel auth signature); public ones are asked of the stream's policy with that user.
The handshake's session cookie is ignored: this door is open to every origin, as
Pusher's is (mobile and server clients send none).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from . import core, protocol, webhooks
from .apps import App
from .mapping import beacon_data, beacon_type, read_frame, stream_for
from .protocol import Channel, CloseCode, ErrorCode, FrameError, Kind

log = logging.getLogger("beacon.pusher")

#: Seconds a socket may stay silent past ``activity_timeout`` before it is closed (4201).
PONG_GRACE_SECONDS = 30.0
MAX_CHANNELS_PER_SOCKET = 100
#: Frames queued for one socket before it is closed as too slow (4200: reconnect).
MAX_QUEUE = 2048


@dataclass(eq=False, slots=True)
class Sub:
    channel: Channel
    stream: str
    user_id: str | None = None  # presence: the member this socket is
    presence_key: str | None = None


@dataclass(eq=False, slots=True)
class StreamState:
    channels: list[str] = field(default_factory=list)
    last: int = 0


# -- presence and occupancy announcements (one keeper each per event loop) -------------


def _presence_key(app: App, channel: str) -> str:
    return f"pusher:{app.id}:{channel}"


def _occupancy_key(app: App) -> str:
    return f"pusher:{app.id}:occupancy"


def _split_key(key: str) -> tuple[App, str] | None:
    _, app_id, channel = key.split(":", 2)
    app = core.get_apps().by_id.get(app_id)
    return None if app is None else (app, channel)


async def _announce_member(key: str, type: str, data: dict[str, Any]) -> None:
    """A user joined or left a presence channel (first socket in, last out)."""
    found = _split_key(key)
    if found is None:
        return
    app, name = found
    channel = protocol.parse_channel(name)
    stream = _stream(app, channel)
    user_id, user_info = json.loads(data["name"])
    if type == "join":
        event = "pusher_internal:member_added"
        payload = {"user_id": user_id, "user_info": user_info}
    else:
        event, payload = "pusher_internal:member_removed", {"user_id": user_id}
    if stream is not None:
        body = beacon_data(event, name, protocol.dumps(payload))
        await core.apublish_ephemeral(stream, beacon_type(event), body)
    hook = "member_added" if type == "join" else "member_removed"
    webhooks.queue_event(app, hook, name, user_id=user_id)


async def _announce_occupancy(key: str, type: str, data: dict[str, Any]) -> None:
    """A channel got its first subscriber or lost its last one (in any process)."""
    found = _split_key(key)
    if found is not None:
        app, _ = found
        name = json.loads(data["name"])
        webhooks.queue_event(
            app, "channel_occupied" if type == "join" else "channel_vacated", name
        )


def presence_keeper() -> core.Keeper:
    return core.new_keeper("pusher-presence", _announce_member)


def occupancy_keeper() -> core.Keeper:
    return core.new_keeper("pusher-occupancy", _announce_occupancy)


def _stream(app: App, channel: Channel) -> str | None:
    return stream_for(channel, app.rules, core.registered, app.namespace)


def control_stream(app: App, user_id: str) -> str | None:
    """The internal stream that tells a user's sockets to close (terminate_connections)."""
    if len(user_id) > 50 or not all(c.isalnum() or c in "_.-" for c in user_id):
        return None
    return f"pusher-ctl:{app.id}.{user_id}"


def _load_user(user_id: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    model = get_user_model()
    try:
        return model.objects.filter(pk=user_id).first() or AnonymousUser()
    except (ValueError, TypeError):
        return AnonymousUser()


def _may_subscribe(stream: str, user: Any) -> bool:
    policy, key = core.policy_for(stream)
    return bool(policy.can_subscribe(user, key))


def _open_stream(stream: str, cache: bool) -> tuple[int, tuple[int, str] | None]:
    """The stream's newest seq (creating it) and, for a cache channel, its last event."""
    pos = core.position(stream)
    assert pos is not None
    return pos.last_seq, (core.last_event(stream) if cache else None)


class PusherConsumer(AsyncWebsocketConsumer):
    app: App
    socket_id: str
    active = False
    closing = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' loop without a channel-layer channel per socket (the hub fans out)."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                message = await receive()
                handler = getattr(self, get_handler_name(message), None)
                if handler is None:
                    raise ValueError(f"No handler for message type {message['type']}")
                await handler(message)
        except StopConsumer:
            pass

    # -- lifecycle ---------------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.subs: dict[str, Sub] = {}
        self.streams: dict[str, StreamState] = {}
        self.out: deque[Any] = deque()
        self.writer: asyncio.Task[None] | None = None
        from django.contrib.auth.models import AnonymousUser

        self.user: Any = AnonymousUser()
        self.user_id: str | None = None
        self.control: str | None = None
        self.last_heard = time.monotonic()
        await self.accept()
        key = self.scope["path"].rstrip("/").rsplit("/", 1)[-1]
        app = core.get_apps().by_key.get(key)
        if app is None:
            await self._refuse(CloseCode.APP_NOT_FOUND, f"App key {key[:64]} not in this cluster")
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        bad = protocol.check_protocol(query)
        if bad is not None:
            await self._refuse(bad, f"Protocol version not supported ({bad.name.lower()})")
            return
        if core.install_shutdown() and core.draining():
            await self._refuse(CloseCode.OVER_CAPACITY, "Server restarting: reconnect")
            return
        self.app = app
        self.socket_id = protocol.new_socket_id()
        self.beacon_connection_id = self.socket_id
        self.bucket = core.TokenBucket(rate=app.frame_rate, burst=app.frame_rate * 2)
        self.events_bucket = core.TokenBucket(
            rate=app.client_event_rate, burst=app.client_event_rate * 2
        )
        self.hub = core.get_hub()
        await self.hub.attach(self)
        self.active = True
        self._queue(protocol.connection_established(self.socket_id, app.activity_timeout))

    async def _refuse(self, code: CloseCode, message: str) -> None:
        self.closing = True
        await self.send(protocol.error_frame(message, int(code)))
        await self.close(code=int(code))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.active:
            self.active = False
            self.closing = True
            if self.writer is not None:
                self.writer.cancel()
            await self.hub.detach(self)
            for name in list(self.subs):
                await self._leave(name)
        await super().websocket_disconnect(message)

    async def close_with(self, code: Any) -> None:
        """Beacon's shutdown drain closes every hub connection with 4012; a Pusher
        client reads 40xx as final, so it gets 4100 (reconnect after a second)."""
        self.close_soon(CloseCode.OVER_CAPACITY, "Server restarting: reconnect")

    def close_soon(self, code: CloseCode, message: str) -> None:
        """Stop sending, then say why and close (from the hub's stack, which never waits)."""
        if not self.closing:
            self.closing = True
            self.out.clear()
            asyncio.get_running_loop().create_task(self._shut(code, message))

    async def _shut(self, code: CloseCode, message: str) -> None:
        try:
            await self.base_send(
                {"type": "websocket.send", "text": protocol.error_frame(message, int(code))}
            )
            await self.close(code=int(code))
        except Exception:  # the client is gone already
            pass

    # -- incoming ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.active or self.closing:
            return
        self.last_heard = time.monotonic()
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if size > self.app.max_message_bytes:
            self._queue(protocol.error_frame("Message too large", ErrorCode.GENERIC))
            return
        if not self.bucket.take(self.last_heard):
            limited = ErrorCode.CLIENT_EVENT_RATE_LIMIT
            self._queue(protocol.error_frame("Too many messages", limited))
            return
        try:
            if text_data is None:
                raise FrameError("binary frames are not supported", ErrorCode.GENERIC)
            incoming = protocol.parse_frame(text_data)
            await self.handle(incoming)
        except FrameError as exc:
            self._queue(protocol.error_frame(exc.message, exc.code))
        except Exception:
            log.exception("beacon: error while handling a Pusher frame")
            self._queue(protocol.error_frame("Internal error", ErrorCode.GENERIC))

    async def handle(self, incoming: protocol.Incoming) -> None:
        event = incoming.event
        if event == "pusher:ping":
            self._queue(protocol.PONG)
        elif event == "pusher:pong":
            pass
        elif event == "pusher:subscribe":
            await self.subscribe(protocol.object_data(incoming))
        elif event == "pusher:unsubscribe":
            data = protocol.object_data(incoming)
            if isinstance(data.get("channel"), str):
                await self._leave(data["channel"])
        elif event == "pusher:signin":
            await self.signin(protocol.object_data(incoming))
        elif event.startswith("client-"):
            await self.client_event(incoming)
        else:
            raise FrameError(f"Unknown event {event[:64]!r}", ErrorCode.GENERIC)

    # -- subscribe -----------------------------------------------------------------------

    async def subscribe(self, data: dict[str, Any]) -> None:
        name = data.get("channel")
        try:
            channel = protocol.parse_channel(name)
        except protocol.ChannelNameError as exc:
            shown = name[:200] if isinstance(name, str) else ""
            self._queue(protocol.subscription_error(shown, 400, str(exc), "InvalidChannel"))
            return
        if channel.name in self.subs:
            presence = await self._presence(channel.name)
            self._queue(protocol.subscription_succeeded(channel.name, presence))
            return
        refusal = await self._check(channel, data)
        if refusal is not None:
            status, error = refusal
            self._queue(protocol.subscription_error(channel.name, status, error))
            return
        stream = _stream(self.app, channel)
        assert stream is not None  # _check refused what maps to no stream
        sub = Sub(channel, stream)
        if channel.kind is Kind.PRESENCE:
            user_id, user_info = self._member(data)
            sub.user_id, sub.presence_key = user_id, _presence_key(self.app, channel.name)
        last, cached = await core.database_sync_to_async(_open_stream)(stream, channel.cache)
        self.subs[channel.name] = sub
        state = self.streams.get(stream)
        if state is None:
            state = self.streams[stream] = StreamState(last=last)
            await self.hub.add(stream, self, last)
        state.channels.append(channel.name)
        # Occupied before the first member is added, as Pusher's webhooks come.
        occupancy = (_occupancy_key(self.app), f"{self.socket_id}/{channel.name}")
        await occupancy_keeper().join(*occupancy, channel.name, protocol.dumps(channel.name))
        presence = None
        if sub.presence_key is not None:
            assert sub.user_id is not None
            entry = protocol.dumps([sub.user_id, user_info])
            members = await presence_keeper().join(
                sub.presence_key, self.socket_id, sub.user_id, entry
            )
            presence = protocol.presence_data(_members(members))
        self._queue(protocol.subscription_succeeded(channel.name, presence))
        if channel.cache:
            self._queue(self._cached(channel.name, cached))

    async def _check(self, channel: Channel, data: dict[str, Any]) -> tuple[int, str] | None:
        """Why a subscription is refused, as ``(status, error)``, or None."""
        if channel.kind is Kind.ENCRYPTED:
            return 400, "Encrypted channels are not supported by Beacon"
        if len(self.subs) >= MAX_CHANNELS_PER_SOCKET:
            return 400, f"At most {MAX_CHANNELS_PER_SOCKET} channels per connection"
        stream = _stream(self.app, channel)
        if stream is None:
            return 404, "No Beacon stream for this channel"
        if channel.kind is Kind.USER:
            if self.user_id is None or self.user_id != channel.body:
                return 403, "Sign in as this user first"
            return None
        if channel.needs_auth:
            channel_data = data.get("channel_data") if channel.kind is Kind.PRESENCE else None
            if channel.kind is Kind.PRESENCE and not isinstance(channel_data, str):
                return 400, "Presence channels need channel_data"
            expected = core_auth(self.app, self.socket_id, channel.name, channel_data)
            if not _check_auth(data.get("auth"), expected):
                return 401, "Invalid signature: the auth does not match this socket and channel"
            if channel.kind is Kind.PRESENCE:
                try:
                    user_id, _ = self._member(data)
                except FrameError as exc:
                    return 400, exc.message
                key = _presence_key(self.app, channel.name)
                present = {uid for uid, _ in await presence_keeper().store.members(key)}
                if user_id not in present and len(present) >= self.app.max_presence_members:
                    return 403, f"Presence channels hold at most {self.app.max_presence_members}"
            return None
        try:
            allowed = await core.database_sync_to_async(_may_subscribe)(stream, self.user)
        except core.StreamError:
            return 404, "No Beacon stream for this channel"
        return None if allowed else (403, "Forbidden by the stream's policy")

    def _member(self, data: dict[str, Any]) -> tuple[str, Any]:
        try:
            member = json.loads(data["channel_data"])
            user_id = member["user_id"]
        except (ValueError, KeyError, TypeError):
            message = "channel_data must be JSON with a user_id"
            raise FrameError(message, ErrorCode.GENERIC) from None
        if isinstance(user_id, bool) or not isinstance(user_id, str | int) or str(user_id) == "":
            raise FrameError("user_id must be a string or a number", ErrorCode.GENERIC)
        user_info = member.get("user_info")
        if len(protocol.dumps(user_info)) > self.app.max_user_info_bytes:
            raise FrameError(
                f"user_info is larger than {self.app.max_user_info_bytes} bytes", ErrorCode.GENERIC
            )
        return str(user_id), user_info

    async def _presence(self, name: str) -> dict[str, Any] | None:
        sub = self.subs[name]
        if sub.presence_key is None:
            return None
        members = await presence_keeper().store.members(sub.presence_key)
        return protocol.presence_data(_members(members))

    def _cached(self, channel: str, cached: tuple[int, str] | None) -> str:
        event = read_frame(cached[1]) if cached is not None else None
        if (
            event is None
            or (event.channel is not None and event.channel != channel)
            or event.ts is None
            or time.time() - event.ts > self.app.cache_ttl
        ):
            return protocol.cache_miss(channel)
        return protocol.frame(event.event, event.data, channel)

    async def _leave(self, name: str) -> None:
        sub = self.subs.pop(name, None)
        if sub is None:
            return
        state = self.streams.get(sub.stream)
        if state is not None:
            if name in state.channels:
                state.channels.remove(name)
            if not state.channels:
                del self.streams[sub.stream]
                await self.hub.remove(sub.stream, self)
        try:
            if sub.presence_key is not None:
                await presence_keeper().leave(sub.presence_key, self.socket_id)
            await occupancy_keeper().leave(_occupancy_key(self.app), f"{self.socket_id}/{name}")
        except Exception:
            log.exception("beacon: presence leave failed for %s", name)

    # -- sign-in and client events -----------------------------------------------------

    async def signin(self, data: dict[str, Any]) -> None:
        user_data = data.get("user_data")
        if not isinstance(user_data, str) or not _check_auth(
            data.get("auth"), core_user_auth(self.app, self.socket_id, user_data)
        ):
            raise FrameError("Invalid signin: the auth does not match", int(CloseCode.UNAUTHORIZED))
        try:
            user_id = json.loads(user_data)["id"]
        except (ValueError, KeyError, TypeError):
            raise FrameError("user_data needs an id", int(CloseCode.UNAUTHORIZED)) from None
        if not isinstance(user_id, str) or not user_id:
            raise FrameError("user_data's id must be a string", int(CloseCode.UNAUTHORIZED))
        if self.control is not None:
            await self.hub.remove(self.control, self)
        self.user_id = user_id
        self.user = await core.database_sync_to_async(_load_user)(user_id)
        self.control = control_stream(self.app, user_id)
        if self.control is not None:
            await self.hub.add(self.control, self, 0)
        self._queue(protocol.signin_success(user_data))

    async def client_event(self, incoming: protocol.Incoming) -> None:
        name, event = incoming.channel, incoming.event
        if not self.app.client_events:
            raise FrameError("Client events are not enabled for this app", ErrorCode.GENERIC)
        sub = self.subs.get(name or "")
        if sub is None:
            raise FrameError("Subscribe before sending client events", ErrorCode.GENERIC)
        if not sub.channel.takes_client_events:
            raise FrameError(
                "Client events go on private and presence channels only", ErrorCode.GENERIC
            )
        if not self._client_events_allowed():
            raise FrameError(
                "Client event rejected due to rate limit", ErrorCode.CLIENT_EVENT_RATE_LIMIT
            )
        data = protocol.client_event_data(incoming.data)
        if len(data.encode()) > self.app.max_event_bytes:
            raise FrameError(f"Event data over {self.app.max_event_bytes} bytes", ErrorCode.GENERIC)
        body = beacon_data(
            event, sub.channel.name, data, exclude=self.socket_id, user_id=sub.user_id
        )
        await core.apublish_ephemeral(sub.stream, beacon_type(event), body)
        fields: dict[str, Any] = {"event": event, "data": data, "socket_id": self.socket_id}
        if sub.user_id is not None:
            fields["user_id"] = sub.user_id
        webhooks.queue_event(self.app, "client_event", sub.channel.name, **fields)

    def _client_events_allowed(self) -> bool:
        """Per user (every socket of one user on this process shares a bucket)."""
        who = self.user_id or next(
            (s.user_id for s in self.subs.values() if s.user_id is not None), None
        )
        bucket = self.events_bucket if who is None else _user_bucket(self.app, who)
        return bucket.take(time.monotonic())

    # -- outgoing: the hub's side ----------------------------------------------------------

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        """Called by the hub; never waits."""
        if self.closing:
            return
        if stream is None:
            if frame == core.PING_FRAME:
                self._heartbeat()
            return
        if stream == self.control:
            self.close_soon(CloseCode.UNAUTHORIZED, "Connections terminated")
            return
        state = self.streams.get(stream)
        if state is None:
            return
        if seq is not None:
            if seq <= state.last:
                return
            if seq > state.last + 1:
                self.out.append(("fill", stream, state.last, seq))
                state.last = seq
                self._kick()
                return
            state.last = seq
        self._deliver(state, frame)

    def _deliver(self, state: StreamState, frame: str) -> None:
        event = read_frame(frame)
        if event is None or (event.exclude is not None and event.exclude == self.socket_id):
            return
        for name in state.channels:
            if event.channel is not None and event.channel != name:
                continue
            if event.event.startswith("pusher_internal:member_"):
                sub = self.subs.get(name)
                if sub is None or sub.user_id == json.loads(event.data).get("user_id"):
                    continue  # a socket's own user is in its hash already
            extra = {"user_id": event.user_id} if event.user_id is not None else {}
            self._queue(protocol.frame(event.event, event.data, name, **extra))

    def _heartbeat(self) -> None:
        silent = time.monotonic() - self.last_heard
        if silent > self.app.activity_timeout + min(PONG_GRACE_SECONDS, self.app.activity_timeout):
            self.close_soon(CloseCode.PONG_NOT_RECEIVED, "Pong reply not received")
            return
        self._queue(protocol.PING)

    def _queue(self, item: Any) -> None:
        if self.closing:
            return
        if len(self.out) >= MAX_QUEUE:
            self.close_soon(CloseCode.RECONNECT, "Too slow a reader: reconnect")
            return
        self.out.append(item)
        self._kick()

    def _kick(self) -> None:
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self.out and not self.closing:
                item = self.out.popleft()
                if isinstance(item, str):
                    await self.base_send({"type": "websocket.send", "text": item})
                else:
                    await self._fill(*item[1:])
        except asyncio.CancelledError:
            raise
        except OSError:
            self.out.clear()
        except Exception:
            log.exception("beacon: sending to a Pusher socket failed")
            self.out.clear()
        finally:
            self.writer = None
            if self.out:
                self._kick()

    async def _fill(self, stream: str, after: int, upto: int) -> None:
        """Send the stream's stored events in ``(after, upto]`` in order (a gap)."""
        while after < upto:
            rows = await core.database_sync_to_async(core.events_after)(stream, after)
            if not rows:
                break
            for seq, frame in rows:
                if seq > upto:
                    return
                state = self.streams.get(stream)
                if state is None:
                    return
                event = read_frame(frame)
                if event is not None and not (event.exclude and event.exclude == self.socket_id):
                    for name in state.channels:
                        if event.channel is None or event.channel == name:
                            text = protocol.frame(event.event, event.data, name)
                            await self.base_send({"type": "websocket.send", "text": text})
                after = seq


def _members(members: list[tuple[str, str]]) -> dict[str, Any]:
    """Presence store entries (user id, ``[user_id, user_info]``) as Pusher's hash."""
    out: dict[str, Any] = {}
    for _, encoded in members:
        try:
            user_id, user_info = json.loads(encoded)
        except (ValueError, TypeError):
            continue
        out[str(user_id)] = user_info
    return out


def core_auth(app: App, socket_id: str, channel: str, channel_data: str | None) -> str:
    from .signing import channel_auth

    return channel_auth(app.key, app.secret, socket_id, channel, channel_data)


def core_user_auth(app: App, socket_id: str, user_data: str) -> str:
    from .signing import user_auth

    return user_auth(app.key, app.secret, socket_id, user_data)


def _check_auth(auth: Any, expected: str) -> bool:
    from .signing import check_auth

    return check_auth(auth, expected)


_buckets: dict[tuple[str, str], core.TokenBucket] = {}


def _user_bucket(app: App, user_id: str) -> core.TokenBucket:
    key = (app.id, user_id)
    bucket = _buckets.get(key)
    if bucket is None:
        if len(_buckets) > 10_000:
            _buckets.clear()
        bucket = _buckets[key] = core.TokenBucket(
            rate=app.client_event_rate, burst=app.client_event_rate * 2
        )
    return bucket
