"""HTTP JSON endpoints: notification list and read state, stream history, health.

All need a signed-in user (401 JSON otherwise); POSTs are CSRF-protected like any
Django form. Errors are ``{"error": code, "message": …}`` with a 4xx status. Every
JSON body goes through :func:`json_body` (here and in ``beacon.chat.views``), so a
body that is not JSON, too deep or not Unicode is a 400, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import eventlog
from .conf import get_config
from .exceptions import StreamError
from .identity.authenticators import issue_ticket, token_user, verify_token
from .identity.core import Handshake, Refused, authenticators
from .identity.limits import rate_limit_response, user_rate_limited
from .models import Notification
from .notifications import mark_read, unread_count
from .protocol import has_lone_surrogate, json_depth
from .streams import parse_stream, policy_for, user_stream

MAX_LIMIT = 100
#: Seqs and ids in bodies are below this (a bigint column's range).
MAX_INT = 2**63


def json_error(code: str, message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": code, "message": message}, status=status)
    # An answered client error is not one for ``django.request`` to log: its warning
    # quotes the request's path, which is the client's text (a stream name, say).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class BadRequest(ValueError):
    """A request Beacon answers with a 400 JSON error; ``message`` quotes no client text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's body as a JSON object (an empty body is ``{}``), or ``BadRequest``.

    The limits of client frames apply: ``MAX_JSON_DEPTH``, and strings that are Unicode
    (JSON's ``"\\ud800"`` escape is not). ``json.loads`` raises ``RecursionError``, not
    ``ValueError``, for ``[`` times 50,000.
    """
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        raise BadRequest("bad_json", "body is not JSON") from None
    depth = get_config()["MAX_JSON_DEPTH"]
    if json_depth(body, depth) > depth:
        raise BadRequest("bad_json", f"body nested deeper than {depth}")
    if not isinstance(body, dict):
        raise BadRequest("bad_request", "body must be an object")
    if has_lone_surrogate(body):
        raise BadRequest("bad_json", "strings must be valid Unicode")
    return body


def int_field(body: dict[str, Any], name: str) -> int | None:
    """A non-negative integer field of a JSON body (bounded for the ORM), or None."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_INT:
        raise BadRequest("bad_request", f"'{name}' must be a non-negative integer")
    return value


def _int_param(request: HttpRequest, name: str, default: int | None) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    # isdigit() alone takes "²" and "①", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadRequest("bad_request", f"'{name}' must be a non-negative integer")
    return int(raw)


def signed_in(view: Any) -> Any:
    """A JSON view for signed-in users: 401 otherwise, and a ``BadRequest`` becomes a 400."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return json_error("unauthenticated", "sign in first", 401)
        try:
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            return json_error(exc.code, str(exc), 400)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@require_GET
@signed_in
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first: ``?before=SEQ&limit=N`` pages back."""
    before = _int_param(request, "before", None)
    limit = min(_int_param(request, "limit", 20) or 20, MAX_LIMIT)
    # Position first, then nothing newer than it: a notification committed in between
    # is left for the live stream (resuming from "seq") instead of being lost to both.
    stream = user_stream(request.user)
    position = eventlog.position(stream)
    assert position is not None
    rows = Notification.objects.filter(user=request.user, seq__lte=position.last_seq)  # type: ignore[misc]  # signed_in: a User
    if before is not None:
        rows = rows.filter(seq__lt=before)
    items = []
    newest = rows.order_by("-seq").values_list("read_at", "event__frame")[:limit]
    for read_at, frame in newest:
        item = json.loads(frame)
        item["read"] = read_at is not None
        items.append(item)
    return JsonResponse(
        {
            "stream": stream,
            "epoch": position.epoch,
            "seq": position.last_seq,
            "unread": unread_count(request.user.pk),
            "items": items,
        }
    )


@require_POST
@signed_in
@user_rate_limited
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark read: a JSON body ``{"seq": N}`` (one) or ``{"up_to": N}`` (all up to N)."""
    body = json_body(request)
    seq, up_to = int_field(body, "seq"), int_field(body, "up_to")
    if (seq is None) == (up_to is None):
        return json_error("bad_request", "give exactly one of 'seq', 'up_to'", 400)
    event = mark_read(request.user.pk, seq=seq, up_to=up_to)
    return JsonResponse(
        {"unread": unread_count(request.user.pk), "seq": event.seq if event else None}
    )


@require_GET
@signed_in
def stream_events(request: HttpRequest, stream: str) -> HttpResponse:
    """A stream's history, newest first: ``?before=SEQ&limit=N`` (the cursor is a seq)."""
    try:
        parse_stream(stream)
    except StreamError:
        return json_error("invalid_stream", "malformed stream name", 400)
    try:
        policy, key = policy_for(stream)
    except StreamError:
        return json_error("unknown_stream", "no policy for the stream's namespace", 404)
    if not policy.is_canonical(key):
        return json_error("invalid_stream", "not the canonical name of a stream", 400)
    if not policy.can_subscribe(request.user, key):
        return json_error("forbidden", "not allowed to read this stream", 403)
    before = _int_param(request, "before", None)
    limit = min(_int_param(request, "limit", 50) or 50, MAX_LIMIT)
    position = eventlog.position(stream)
    assert position is not None
    # As for notifications: nothing newer than the position the page will resume from.
    newest = position.last_seq + 1 if before is None else min(before, position.last_seq + 1)
    rows = eventlog.events_before(stream, newest, limit=limit)
    head = json.dumps(
        {
            "stream": stream,
            "epoch": position.epoch,
            "seq": position.last_seq,
            "first_seq": position.first_seq,
        }
    )
    # The frames are stored as JSON text: join them instead of parsing and re-encoding.
    body = head[:-1] + ',"items":[' + ",".join(frame for _, frame in rows) + "]}"
    return HttpResponse(body, content_type="application/json")


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database and the channel layer answer, 503 otherwise."""
    from asgiref.sync import async_to_sync

    from .fanout.relay import get_layer

    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    layer = get_layer()
    if layer is None:
        checks["channel_layer"] = "local"
    else:
        try:
            async_to_sync(_probe_layer)(layer)
            checks["channel_layer"] = "ok"
        except Exception as exc:
            checks["channel_layer"] = f"error: {type(exc).__name__}"
    healthy = all(v in ("ok", "local") for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


async def _probe_layer(layer: Any) -> None:
    import asyncio

    # A send to a group nobody joins: Redis must answer, and nothing is left behind
    # (a receive on a new channel would leave one subscription per probe).
    await asyncio.wait_for(layer.group_send("beacon.health", {"type": "beacon.health"}), timeout=2)


# -- tickets (beacon.identity) --------------------------------------------------------------


def _no_view(request: HttpRequest) -> HttpResponse:
    """A view that is not CSRF-exempt, for asking Django's CSRF check in a view."""
    return HttpResponse()


@csrf_exempt  # checked below when the session is the credential
@require_POST
def tickets(request: HttpRequest) -> HttpResponse:
    """``POST /beacon/tickets/``: a one-time ticket for a WebSocket handshake.

    Asked with the session cookie (CSRF-checked, like any form) or with an
    ``Authorization: Bearer`` token (no CSRF: a browser never sends one on its own).
    Answers ``{"ticket": "...", "expires_in": N}``; the ticket is good for one handshake
    (``?ticket=...``) within ``TICKET_SECONDS``. Nothing here logs it.
    """
    authorization = {"authorization": request.headers.get("Authorization", "")}
    token = Handshake(headers=authorization, query={}, cookies={}).bearer_token()
    expires: float | None = None
    session_key: str | None = None
    if token is not None:
        if not any(getattr(a, "method", None) == "bearer" for a in authenticators()):
            return json_error("unauthenticated", "bearer tokens are not enabled", 401)
        try:
            claims = verify_token(token)
            user: Any = token_user(claims)
        except Refused as exc:
            return json_error("unauthenticated", exc.reason, 401)
        expires = claims["exp"]
    else:
        user = request.user
        if not user.is_authenticated:
            return json_error("unauthenticated", "sign in first", 401)
        # ``tickets`` itself is csrf_exempt (the token path needs none), which the
        # middleware would honour: ask it about a view that is not.
        refused = CsrfViewMiddleware(_no_view).process_view(request, _no_view, (), {})
        if refused is not None:
            return json_error("csrf", "CSRF check failed", 403)
        session_key = request.session.session_key
    limited = rate_limit_response(user)
    if limited is not None:
        return limited
    ticket = issue_ticket(user, session_key=session_key, credential_expires=expires)
    response = JsonResponse({"ticket": ticket, "expires_in": get_config()["TICKET_SECONDS"]})
    response["Cache-Control"] = "no-store"
    return response
