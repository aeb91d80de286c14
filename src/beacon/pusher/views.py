"""HTTP: the auth endpoints pusher-js and Laravel Echo call, and Pusher's HTTP API.

Auth endpoints, authenticated as a WebSocket handshake is (``beacon.identity``): the
session cookie (CSRF-checked like any Django POST), or ``Authorization: Bearer`` with a
JWT (no CSRF: a browser never sends one on its own; Laravel Echo sends it from
``auth.headers``). A refused token is 401, no user 403:

* ``POST /pusher/auth`` and ``/broadcasting/auth`` (Echo's default) — form-encoded
  ``socket_id`` and ``channel_name``; the channel's stream policy decides; answers
  ``{"auth": "KEY:SIG"}`` (and ``channel_data`` on presence channels);
* ``POST /pusher/user-auth`` — ``socket_id``; answers ``{"auth", "user_data"}`` for
  ``pusher:signin`` (then ``#server-to-user-{id}`` carries the user's notifications).
  ``user_data["beacon"]`` names the request's session (a keyed hash, never the key)
  and the token's expiry, so the signed-in socket ends with them.

The HTTP API (signed by the server SDKs, so CSRF-exempt): ``POST /apps/{id}/events``,
``POST /apps/{id}/batch_events``, ``GET /apps/{id}/channels``, ``…/channels/{name}``,
``…/channels/{name}/users``, ``POST /apps/{id}/users/{user}/terminate_connections``
(also without the ``/apps/{id}`` prefix, where pusher-http-python sends it). Errors are
answered as Pusher does: a status (400, 401, 403, 404, 413) and a plain-text message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import core, protocol
from .apps import App
from .consumer import control_stream
from .mapping import beacon_data, beacon_type, stream_for
from .protocol import ChannelNameError, Kind, parse_channel
from .signing import ApiError, channel_auth, user_auth, verify_request

# -- auth endpoints ----------------------------------------------------------------------


def _auth_app(request: HttpRequest) -> App | None:
    """The app an auth request is for: the only one, or the one ``app_key`` names."""
    apps = core.get_apps()
    key = request.POST.get("app_key") or request.GET.get("app_key")
    if key:
        return apps.by_key.get(key)
    return next(iter(apps.by_key.values())) if len(apps.by_key) == 1 else None


def user_info(app: App, user: Any) -> Any:
    return import_string(app.user_info)(user)


def _error(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _no_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def _requester(request: HttpRequest) -> core.Identity | HttpResponse:
    """Who asks: a bearer JWT (when ``BearerTokenAuthenticator`` is configured), else
    the session, CSRF-checked (these views are exempt from the middleware's check)."""
    token = core.Handshake(
        headers={"authorization": request.headers.get("Authorization", "")},
        query={},
        cookies={},
    ).bearer_token()
    if token is not None:
        if not any(getattr(a, "method", None) == "bearer" for a in core.authenticators()):
            return _error(401, "Bearer tokens are not enabled")
        try:
            claims = core.verify_token(token)
            user = core.token_user(claims)
        except core.Refused as exc:
            return _error(401, f"Invalid bearer token: {exc.reason}")
        return core.Identity(user, "bearer", expires_at=claims["exp"])
    if not request.user.is_authenticated:
        return _error(403, "Sign in first")
    # A callback of its own: the views' ``csrf_exempt`` would make the check pass.
    refused = CsrfViewMiddleware(_no_view).process_view(request, _no_view, (), {})
    if refused is not None:
        return _error(403, "CSRF check failed")
    return core.Identity(request.user, "session", session_key=request.session.session_key)


@csrf_exempt  # checked in _requester when the session is the credential
@require_POST
def channel_auth_view(request: HttpRequest) -> HttpResponse:
    app = _auth_app(request)
    if app is None:
        return _error(404, "Unknown app (pass app_key when several apps are configured)")
    identity = _requester(request)
    if isinstance(identity, HttpResponse):
        return identity
    user = identity.user
    socket_id = request.POST.get("socket_id", "")
    if not protocol.SOCKET_ID.fullmatch(socket_id):
        return _error(400, "Invalid socket_id")
    try:
        channel = parse_channel(request.POST.get("channel_name"))
    except ChannelNameError as exc:
        return _error(400, f"Invalid channel_name: {exc}")
    if channel.kind not in (Kind.PRIVATE, Kind.PRESENCE):
        return _error(400, "Only private- and presence- channels are authorized here")
    stream = stream_for(channel, app.rules, core.registered, app.namespace)
    if stream is None:
        return _error(404, "No Beacon stream for this channel")
    try:
        policy, key = core.policy_for(stream)
    except core.StreamError:
        return _error(404, "No Beacon stream for this channel")
    if not policy.can_subscribe(user, key):
        return _error(403, "Forbidden")
    if channel.kind is Kind.PRIVATE:
        return JsonResponse({"auth": channel_auth(app.key, app.secret, socket_id, channel.name)})
    member = {"user_id": str(user.pk), "user_info": user_info(app, user)}
    channel_data = json.dumps(member)
    if len(json.dumps(member["user_info"])) > app.max_user_info_bytes:
        return _error(413, f"user_info is larger than {app.max_user_info_bytes} bytes")
    signature = channel_auth(app.key, app.secret, socket_id, channel.name, channel_data)
    return JsonResponse({"auth": signature, "channel_data": channel_data})


@csrf_exempt  # checked in _requester when the session is the credential
@require_POST
def user_auth_view(request: HttpRequest) -> HttpResponse:
    app = _auth_app(request)
    if app is None:
        return _error(404, "Unknown app (pass app_key when several apps are configured)")
    identity = _requester(request)
    if isinstance(identity, HttpResponse):
        return identity
    socket_id = request.POST.get("socket_id", "")
    if not protocol.SOCKET_ID.fullmatch(socket_id):
        return _error(400, "Invalid socket_id")
    user = identity.user
    beacon = {"session": identity.session_id, "expires": identity.expires_at}
    user_data = json.dumps(
        {"id": str(user.pk), "user_info": user_info(app, user), "beacon": beacon}
    )
    return JsonResponse(
        {"auth": user_auth(app.key, app.secret, socket_id, user_data), "user_data": user_data}
    )


# -- the HTTP API ----------------------------------------------------------------------

MAX_BODY_BYTES = 1024 * 1024


def _api(
    method: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Verify the signature (and that the app id matches the key), answer errors as text."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        def wrapped(request: HttpRequest, app_id: str | None = None, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                return _error(405, f"Use {method}")
            body = request.body if method == "POST" else b""
            if len(body) > MAX_BODY_BYTES:
                return _error(413, "Request body too large")
            params = {k: request.GET[k] for k in request.GET}
            apps = core.get_apps()
            try:
                app = verify_request(
                    method,
                    request.path,
                    params,
                    body,
                    apps.by_key.get,
                    lambda a: a.secret,
                    time.time(),
                )
                if app_id is not None and app.id != app_id:
                    raise ApiError(401, "auth_key does not belong to this app id")
                payload = _json(body) if method == "POST" else {}
                return view(request, app, payload, params, **kwargs)
            except ApiError as exc:
                return _error(exc.status, exc.message)

        return csrf_exempt(wrapped)

    return wrap


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "Body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "Body must be a JSON object")
    return payload


def _channel(app: App, name: Any) -> tuple[protocol.Channel, str]:
    try:
        channel = parse_channel(name)
    except ChannelNameError as exc:
        raise ApiError(400, f"Invalid channel {str(name)[:200]!r}: {exc}") from None
    if channel.kind is Kind.ENCRYPTED:
        raise ApiError(400, "Encrypted channels are not supported by Beacon")
    stream = stream_for(channel, app.rules, core.registered, app.namespace)
    if stream is None:
        raise ApiError(400, f"No Beacon stream for channel {channel.name!r}")
    return channel, stream


def _event(
    app: App, raw: dict[str, Any], channels: list[Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    """Check one event; its ``(stream, type, data)`` for each channel."""
    name, data, socket_id = raw.get("name"), raw.get("data"), raw.get("socket_id")
    if not isinstance(name, str) or not name or len(name) > protocol.MAX_EVENT_NAME_LENGTH:
        raise ApiError(400, "name must be a string of 1-200 characters")
    if not isinstance(data, str):
        raise ApiError(400, "data must be a string (JSON-encode objects)")
    if len(data.encode()) > app.max_event_bytes:
        raise ApiError(413, f"Event data over {app.max_event_bytes} bytes")
    if socket_id is not None and (
        not isinstance(socket_id, str) or not protocol.SOCKET_ID.fullmatch(socket_id)
    ):
        raise ApiError(400, "Invalid socket_id")
    out = []
    for channel_name in channels:
        channel, stream = _channel(app, channel_name)
        body = beacon_data(name, channel.name, data, exclude=socket_id)
        out.append((stream, beacon_type(name), body))
    return out


def _publish_all(events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Store every event in Beacon's log in one transaction; delivered after commit."""
    with core.transaction.atomic():
        for stream, type, data in events:
            core.publish(stream, type, data)


@_api("POST")
def events(request: HttpRequest, app: App, payload: dict[str, Any], params: Any) -> HttpResponse:
    channels = payload.get("channels")
    if channels is None and "channel" in payload:
        channels = [payload["channel"]]
    if not isinstance(channels, list) or not channels:
        raise ApiError(400, "channels must be a non-empty list")
    if len(channels) > app.max_trigger_channels:
        raise ApiError(400, f"At most {app.max_trigger_channels} channels per event")
    _publish_all(_event(app, payload, channels))
    return JsonResponse({})


@_api("POST")
def batch_events(
    request: HttpRequest, app: App, payload: dict[str, Any], params: Any
) -> HttpResponse:
    batch = payload.get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "batch must be a non-empty list")
    if len(batch) > app.max_batch_events:
        raise ApiError(400, f"At most {app.max_batch_events} events per batch")
    prepared = []
    for raw in batch:
        if not isinstance(raw, dict):
            raise ApiError(400, "each batch entry must be an object")
        prepared.extend(_event(app, raw, [raw.get("channel")]))
    _publish_all(prepared)
    return JsonResponse({"batch": [{} for _ in batch]})


def _info(params: dict[str, str]) -> set[str]:
    info = {a for a in params.get("info", "").split(",") if a}
    unknown = info - {"user_count", "subscription_count"}
    if unknown:
        raise ApiError(400, f"Unknown info attributes {sorted(unknown)}")
    if "subscription_count" in info:
        raise ApiError(400, "subscription_count is not supported by Beacon")
    return info


def _occupied(app: App) -> list[str]:
    members = async_to_sync(core.presence_members)(f"pusher:{app.id}:occupancy")
    return sorted(json.loads(name) for _, name in members)


def _users(app: App, channel: str) -> list[str]:
    members = async_to_sync(core.presence_members)(f"pusher:{app.id}:{channel}")
    return [user_id for user_id, _ in members]


@_api("GET")
def channels(request: HttpRequest, app: App, payload: Any, params: dict[str, str]) -> HttpResponse:
    info = _info(params)
    prefix = params.get("filter_by_prefix", "")
    if "user_count" in info and not prefix.startswith("presence-"):
        raise ApiError(400, "user_count needs filter_by_prefix=presence-")
    names = [n for n in _occupied(app) if n.startswith(prefix)]
    listed: dict[str, Any] = {}
    for name in names:
        listed[name] = (
            {"user_count": len(_users(app, name))} if "user_count" in info else {}
        )
    return JsonResponse({"channels": listed})


@_api("GET")
def channel(
    request: HttpRequest, app: App, payload: Any, params: dict[str, str], name: str
) -> HttpResponse:
    info = _info(params)
    found, _ = _channel(app, name)
    if "user_count" in info and found.kind is not Kind.PRESENCE:
        raise ApiError(400, "user_count is only for presence channels")
    out: dict[str, Any] = {"occupied": found.name in _occupied(app)}
    if "user_count" in info:
        out["user_count"] = len(_users(app, found.name))
    return JsonResponse(out)


@_api("GET")
def channel_users(
    request: HttpRequest, app: App, payload: Any, params: dict[str, str], name: str
) -> HttpResponse:
    found, _ = _channel(app, name)
    if found.kind is not Kind.PRESENCE:
        raise ApiError(400, "users are listed for presence channels only")
    return JsonResponse({"users": [{"id": u} for u in _users(app, found.name)]})


@_api("POST")
def terminate_connections(
    request: HttpRequest, app: App, payload: Any, params: Any, user_id: str
) -> HttpResponse:
    stream = control_stream(app, user_id)
    if stream is not None:
        core.publish_ephemeral(stream, "terminate", {})
    return JsonResponse({})
