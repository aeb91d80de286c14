"""The Pusher door: ``ws[s]://HOST/app/{key}?protocol=7``, one more sink of the hub.

A socket subscribes the hub to the Beacon stream of each channel it joins (``mapping``),
so what ``beacon.publish`` or the HTTP API stores reaches it. Its way out is the
:class:`~beacon.fanout.outbox.Outbox` every front door has (eager send, bounded backlog,
seq order, gap fill, one close): the send function the door gives it reads each Beacon
frame as the Pusher events of the socket's channels on that stream (``_send_out``), and
its close function answers every close with a Pusher code (``_close_code``).

Presence and channel occupancy use Beacon's presence store (Redis across processes):
``member_added`` only for a user's first socket on a channel, ``member_removed`` only
for the last, and a killed process's members leave within the presence TTL.

Who a socket is: nobody until ``pusher:signin`` (a signature made by the user-auth
endpoint) names a user. A signed-in socket joins the identity registry
(``beacon.identity.control``): the session the user-auth request came from ending, or
the user deactivated or deleted, closes it with 4009 (final: pusher-js does not
reconnect), and ``beacon.revoke(stream)`` ends its channels on that stream with
``pusher:subscription_error`` (403). Private and presence subscriptions carry their own
proof (the channel auth signature); public ones are asked of the stream's policy with
that user. The handshake's session cookie is ignored: this door is open to every
origin, as Pusher's is (mobile and server clients send none).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from . import core, protocol, webhooks
from .apps import App
from .core import BeaconCloseCode, Identity, Outbox, Track, get_registry
from .mapping import Event, beacon_data, beacon_type, read_frame, stream_for
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
    #: presence: the members this socket was told of (its hash, then each added/removed)
    members: set[str] = field(default_factory=set)


@dataclass(eq=False, slots=True, kw_only=True)
class StreamTrack(Track):
    """A Beacon stream in the socket's outbox, and the channels that read it."""

    channels: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, eq=False)
class SignedIn(Identity):
    """A ``pusher:signin``'s identity: the user-auth request's session, by its hash.

    The socket never sees the session key, only the keyed hash the user-auth endpoint
    signed into ``user_data`` (what ``end_sessions`` names sessions by).
    """

    sid: str | None = None

    @property
    def session_id(self) -> str | None:
        return self.sid


#: How a Pusher socket answers each close: (Pusher code, message). Beacon's codes are
#: those the outbox, the hub (shutdown) and the identity registry close with; a Pusher
#: client reads 40xx as final, so only an ended identity gets one.
CLOSES: dict[int, tuple[CloseCode, str]] = {
    BeaconCloseCode.SERVER_RESTART: (CloseCode.OVER_CAPACITY, "Server restarting: reconnect"),
    BeaconCloseCode.TOO_MANY_CONNECTIONS: (
        CloseCode.OVER_CAPACITY,
        "Too many connections for this user: reconnect later",
    ),
    BeaconCloseCode.TOO_SLOW: (CloseCode.RECONNECT, "Too slow a reader: reconnect"),
    BeaconCloseCode.INTERNAL_ERROR: (CloseCode.RECONNECT, "Internal error: reconnect"),
    BeaconCloseCode.CREDENTIAL_EXPIRED: (
        CloseCode.RECONNECT,
        "Credential expired: reconnect and sign in again",
    ),
    BeaconCloseCode.UNAUTHENTICATED: (CloseCode.UNAUTHORIZED, "Signed out: connection ended"),
    CloseCode.UNAUTHORIZED: (CloseCode.UNAUTHORIZED, "Connections terminated"),
    CloseCode.PONG_NOT_RECEIVED: (CloseCode.PONG_NOT_RECEIVED, "Pong reply not received"),
}


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


def _open_stream(stream: str, cache: bool) -> tuple[Any, tuple[int, str] | None]:
    """The stream's position (creating it) and, for a cache channel, its last event."""
    pos = core.position(stream)
    assert pos is not None
    return pos, (core.last_event(stream) if cache else None)


class PusherConsumer(core.HubConsumer):
    app: App
    socket_id: str
    outbox: Outbox[StreamTrack]
    identity: Identity
    active = False
    registered = False

    # -- lifecycle ---------------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.outbox = Outbox(
            self._send_out,
            self._close_code,
            queue_size=MAX_QUEUE,
            page_size=core.get_config()["REPLAY_PAGE_SIZE"],
        )
        self.subs: dict[str, Sub] = {}
        #: The socket's streams (the outbox's tracks); the identity registry reads them.
        self.streams = self.subscriptions = self.outbox.tracks
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
        self.registry = get_registry()
        self.active = True
        await self.hub.attach(self.outbox)
        await self._push(protocol.connection_established(self.socket_id, app.activity_timeout))

    async def _refuse(self, code: CloseCode, message: str) -> None:
        self.outbox.stop()
        await self.send(protocol.error_frame(message, int(code)))
        await self.close(code=int(code))

    async def teardown(self) -> None:
        """Once, whatever ends the socket; each step runs even if one before failed."""
        if not self.active:
            return
        self.active = False
        self.outbox.stop()
        try:
            await self.hub.detach(self.outbox)
        except Exception:
            log.exception("beacon: detaching a Pusher socket from the hub failed")
        await self._unregister()
        for name in list(self.subs):
            await self._leave(name)

    @property
    def closing(self) -> bool:
        return self.outbox.closing

    async def close_with(self, code: Any) -> None:
        """Close once, through the outbox (the identity registry's way in too)."""
        await self.outbox.close(code)

    async def _close_code(self, code: int) -> None:
        """The outbox's close: say why in ``pusher:error``, then close, with a Pusher
        code (``CLOSES``: Beacon's 4012 on SIGTERM is 4100, never a final 40xx)."""
        pusher_code, message = CLOSES.get(code, (CloseCode.RECONNECT, "Reconnect"))
        try:
            await self._push(protocol.error_frame(message, int(pusher_code)))
            await self.close(code=int(pusher_code))
        except Exception:  # the client is gone already
            pass

    async def _push(self, text: str) -> None:
        """Send one Pusher frame of the door's own (replies, subscription answers)."""
        await self.base_send({"type": "websocket.send", "text": text})

    # -- incoming ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.active or self.closing:
            return
        self.last_heard = time.monotonic()
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if size > self.app.max_message_bytes:
            await self._push(protocol.error_frame("Message too large", ErrorCode.GENERIC))
            return
        if not self.bucket.take(self.last_heard):
            limited = ErrorCode.CLIENT_EVENT_RATE_LIMIT
            await self._push(protocol.error_frame("Too many messages", limited))
            return
        try:
            if text_data is None:
                raise FrameError("binary frames are not supported", ErrorCode.GENERIC)
            incoming = protocol.parse_frame(text_data)
            await self.handle(incoming)
        except FrameError as exc:
            await self._push(protocol.error_frame(exc.message, exc.code))
        except Exception:
            log.exception("beacon: error while handling a Pusher frame")
            await self._push(protocol.error_frame("Internal error", ErrorCode.GENERIC))

    async def handle(self, incoming: protocol.Incoming) -> None:
        event = incoming.event
        if event == "pusher:ping":
            await self._push(protocol.PONG)
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
            await self._push(protocol.subscription_error(shown, 400, str(exc), "InvalidChannel"))
            return
        if channel.name in self.subs:
            presence = await self._presence(channel.name)
            await self._push(protocol.subscription_succeeded(channel.name, presence))
            return
        refusal = await self._check(channel, data)
        if refusal is not None:
            status, error = refusal
            await self._push(protocol.subscription_error(channel.name, status, error))
            return
        stream = _stream(self.app, channel)
        assert stream is not None  # _check refused what maps to no stream
        sub = Sub(channel, stream)
        if channel.kind is Kind.PRESENCE:
            user_id, user_info = self._member(data)
            sub.user_id, sub.presence_key = user_id, _presence_key(self.app, channel.name)
        position, cached = await core.database_call(_open_stream)(stream, channel.cache)
        self.subs[channel.name] = sub
        track = self.streams.get(stream)
        new = track is None
        if track is None:
            track = StreamTrack(stream=stream, epoch=position.epoch, last=position.last_seq)
            self.streams[stream] = track
        # Held until the answer is out: the stream's events queue behind it (the outbox).
        async with track.lock:
            if new:
                await self.hub.add(stream, self.outbox, position.last_seq, position.epoch)
            track.channels.append(channel.name)
            # Occupied before the first member is added, as Pusher's webhooks come.
            occupancy = (_occupancy_key(self.app), f"{self.socket_id}/{channel.name}")
            await occupancy_keeper().join(*occupancy, channel.name, protocol.dumps(channel.name))
            presence = None
            if sub.presence_key is not None:
                assert sub.user_id is not None
                entry = protocol.dumps([sub.user_id, user_info])
                joined = await presence_keeper().join(
                    sub.presence_key, self.socket_id, sub.user_id, entry
                )
                members = _members(joined)
                sub.members = set(members)
                presence = protocol.presence_data(members)
            await self._push(protocol.subscription_succeeded(channel.name, presence))
            if channel.cache:
                await self._push(self._cached(channel.name, cached))
            # An event stored after the position read that reached the hub before this
            # socket joined it: bring it from the log (as the WebSocket door does).
            known = self.hub.known.get(stream, 0)
            if known > track.last:
                await self.outbox.catch_up(track, known)

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
            allowed = await core.database_call(_may_subscribe)(stream, self.user)
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
        members = _members(await presence_keeper().store.members(sub.presence_key))
        sub.members = set(members)
        return protocol.presence_data(members)

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
        track = self.streams.get(sub.stream)
        if track is not None:
            if name in track.channels:
                track.channels.remove(name)
            if not track.channels:
                del self.streams[sub.stream]
                await self.hub.remove(sub.stream, self.outbox)
        try:
            if sub.presence_key is not None:
                await presence_keeper().leave(sub.presence_key, self.socket_id)
            await occupancy_keeper().leave(_occupancy_key(self.app), f"{self.socket_id}/{name}")
        except Exception:
            log.exception("beacon: presence leave failed for %s", name)

    async def revoked(self, stream: str) -> None:
        """``beacon.revoke(stream)``: the policy refuses the signed-in user now. Each
        channel on the stream ends as an unsubscribe would, and the client is told
        with ``pusher:subscription_error`` (403); subscribing again asks anew."""
        track = self.streams.get(stream)
        if track is None or stream == self.control or self.closing:
            return
        for name in list(track.channels):
            await self._leave(name)
            await self._push(
                protocol.subscription_error(name, 403, "Access revoked by the stream's policy")
            )

    # -- sign-in and client events -----------------------------------------------------

    async def signin(self, data: dict[str, Any]) -> None:
        user_data = data.get("user_data")
        if not isinstance(user_data, str) or not _check_auth(
            data.get("auth"), core_user_auth(self.app, self.socket_id, user_data)
        ):
            raise FrameError("Invalid signin: the auth does not match", int(CloseCode.UNAUTHORIZED))
        try:
            parsed = json.loads(user_data)
            user_id = parsed["id"]
        except (ValueError, KeyError, TypeError):
            raise FrameError("user_data needs an id", int(CloseCode.UNAUTHORIZED)) from None
        if not isinstance(user_id, str) or not user_id:
            raise FrameError("user_data's id must be a string", int(CloseCode.UNAUTHORIZED))
        await self._unregister()
        if self.control is not None:
            self.streams.pop(self.control, None)
            await self.hub.remove(self.control, self.outbox)
        self.user_id = user_id
        self.user = await core.database_call(_load_user)(user_id)
        self.control = control_stream(self.app, user_id)
        if self.control is not None:
            self.streams[self.control] = StreamTrack(stream=self.control)
            await self.hub.add(self.control, self.outbox, 0)
        if self.user.is_authenticated:
            sid, expires = _signed_identity(parsed)
            self.identity = SignedIn(self.user, "pusher", expires_at=expires, sid=sid)
            if not await self.registry.admit(self):
                await self.close_with(BeaconCloseCode.TOO_MANY_CONNECTIONS)
                return
            self.registered = True
        await self._push(protocol.signin_success(user_data))

    async def _unregister(self) -> None:
        if self.registered:
            self.registered = False
            try:
                await self.registry.remove(self)
            except Exception:
                log.exception("beacon: leaving the identity registry failed")

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

    # -- outgoing: the outbox's send function -------------------------------------------

    async def _send_out(self, text: str) -> None:
        """What the outbox sends, as Pusher events: each Beacon frame of a stream goes to
        the socket's channels on it; the hub's heartbeat is Pusher's ping."""
        if text == core.PING_FRAME:
            await self._heartbeat()
            return
        event = read_frame(text)
        if event is None or event.stream is None:
            return  # a Beacon control frame (a reset's ``subscribed``): Pusher has none
        if event.stream == self.control:
            await self.close_with(CloseCode.UNAUTHORIZED)
            return
        track = self.streams.get(event.stream)
        if track is not None:
            for frame in self._frames(track, event):
                await self._push(frame)

    def _frames(self, track: StreamTrack, event: Event) -> list[str]:
        if event.exclude is not None and event.exclude == self.socket_id:
            return []
        frames = []
        for name in track.channels:
            if event.channel is not None and event.channel != name:
                continue
            if event.event.startswith("pusher_internal:member_") and not self._news(name, event):
                continue
            extra = {"user_id": event.user_id} if event.user_id is not None else {}
            frames.append(protocol.frame(event.event, event.data, name, **extra))
        return frames

    def _news(self, name: str, event: Event) -> bool:
        """Whether a member event changes what this socket knows of the channel.

        Across processes an announcement can arrive after the subscription's hash that
        already holds (or already lacks) the member: pusher-js would count a join twice.
        A socket's own user is in its hash from the start.
        """
        sub = self.subs.get(name)
        user_id = str(json.loads(event.data).get("user_id"))
        if sub is None or user_id == sub.user_id:
            return False
        if event.event == "pusher_internal:member_added":
            if user_id in sub.members:
                return False
            sub.members.add(user_id)
            return True
        if user_id not in sub.members:
            return False
        sub.members.discard(user_id)
        return True

    async def _heartbeat(self) -> None:
        silent = time.monotonic() - self.last_heard
        if silent > self.app.activity_timeout + min(PONG_GRACE_SECONDS, self.app.activity_timeout):
            await self.close_with(CloseCode.PONG_NOT_RECEIVED)
            return
        await self._push(protocol.PING)


def _signed_identity(user_data: dict[str, Any]) -> tuple[str | None, float | None]:
    """The session hash and credential expiry the user-auth endpoint signed in
    (``user_data["beacon"]``); none when another signer made the user data."""
    beacon = user_data.get("beacon")
    if not isinstance(beacon, dict):
        return None, None
    sid, expires = beacon.get("session"), beacon.get("expires")
    return (
        sid if isinstance(sid, str) else None,
        float(expires) if isinstance(expires, int | float) else None,
    )


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
