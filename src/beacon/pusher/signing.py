"""Pusher's signatures: channel and user auth, signed HTTP API requests, webhooks.

Pure: no Django, no I/O; time is passed in. Every comparison of a signature is
constant-time (``hmac.compare_digest``). As pusher-http-python signs them:

* channel auth: ``KEY:HMAC-SHA256(secret, "socket_id:channel[:channel_data]")``;
* user sign-in: ``KEY:HMAC-SHA256(secret, "socket_id::user::user_data")``;
* an HTTP API request: ``auth_signature = HMAC-SHA256(secret, "METHOD\\nPATH\\nQUERY")``
  where QUERY is every parameter but ``auth_signature``, sorted by (lower-cased) name,
  ``name=value`` joined by ``&``, values not URL-encoded; ``body_md5`` is the body's MD5;
* a webhook: ``X-Pusher-Signature = HMAC-SHA256(secret, body)``, ``X-Pusher-Key``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

#: Pusher refuses API requests whose ``auth_timestamp`` is further than this from now.
TIMESTAMP_WINDOW_SECONDS = 600

A = TypeVar("A")


def sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def channel_auth(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    text = f"{socket_id}:{channel}"
    if channel_data is not None:
        text += f":{channel_data}"
    return f"{key}:{sign(secret, text)}"


def user_auth(key: str, secret: str, socket_id: str, user_data: str) -> str:
    return f"{key}:{sign(secret, f'{socket_id}::user::{user_data}')}"


def check_auth(auth: Any, expected: str) -> bool:
    """Does a client's ``auth`` string equal the one we would make? Constant-time."""
    if not isinstance(auth, str) or len(auth) > 512:
        return False
    return hmac.compare_digest(auth.encode(), expected.encode())


# -- the HTTP API --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiError(Exception):
    """An HTTP API request refused: answered with ``status`` and ``message`` as text."""

    status: int
    message: str


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    query = "&".join(
        f"{k.lower()}={v}" for k, v in sorted(params.items(), key=lambda kv: kv[0].lower())
        if k != "auth_signature"
    )
    return f"{method.upper()}\n{path}\n{query}"


def verify_request(
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    find_app: Callable[[str], A | None],
    secret_of: Callable[[A], str],
    now: float,
) -> A:
    """The app that signed a request, or ``ApiError`` (401 for anything signature-ish).

    ``params`` are the decoded query parameters (one value each); ``find_app`` looks an
    app up by its key.
    """
    for name in ("auth_key", "auth_timestamp", "auth_version", "auth_signature"):
        if not params.get(name):
            raise ApiError(401, f"Missing {name}")
    app = find_app(params["auth_key"])
    if app is None:
        raise ApiError(401, "Unknown auth_key")
    if params["auth_version"] != "1.0":
        raise ApiError(401, "Unsupported auth_version (1.0 only)")
    timestamp = params["auth_timestamp"]
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise ApiError(401, "auth_timestamp must be an integer")
    if abs(now - int(timestamp)) > TIMESTAMP_WINDOW_SECONDS:
        raise ApiError(
            401,
            f"Timestamp expired: given {timestamp}, now {int(now)}; "
            f"the window is {TIMESTAMP_WINDOW_SECONDS} s (check the clocks)",
        )
    if body:
        given = params.get("body_md5", "")
        if not hmac.compare_digest(given.encode(), hashlib.md5(body).hexdigest().encode()):
            raise ApiError(401, "body_md5 does not match the body")
    elif params.get("body_md5") not in (None, hashlib.md5(b"").hexdigest()):
        raise ApiError(401, "body_md5 does not match the body")
    expected = sign(secret_of(app), string_to_sign(method, path, params))
    if not hmac.compare_digest(params["auth_signature"].encode(), expected.encode()):
        raise ApiError(
            401, "Invalid signature: expected HmacSHA256Hex(secret, string_to_sign)"
        )
    return app


def sign_request(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    now: float,
) -> dict[str, str]:
    """The query parameters of a signed request (for tests and Beacon's own callers)."""
    signed = {
        **params,
        "auth_key": key,
        "auth_timestamp": str(int(now)),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body).hexdigest(),
    }
    signed["auth_signature"] = sign(secret, string_to_sign(method, path, signed))
    return signed


# -- webhooks ------------------------------------------------------------------------


def webhook_body(events: list[dict[str, Any]], time_ms: int) -> bytes:
    """Pusher's envelope: ``{"time_ms": …, "events": [{"name": …, "channel": …}, …]}``."""
    return json.dumps({"time_ms": time_ms, "events": events}, separators=(",", ":")).encode()


def webhook_headers(key: str, secret: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Pusher-Key": key,
        "X-Pusher-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
