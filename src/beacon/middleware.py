"""The origin check in front of every WebSocket front door.

:class:`OriginCheckMiddleware` refuses a handshake from any origin but the site's
own, compared as Django's CSRF check compares them (scheme, host and port). Who the
handshake is comes after it, from ``beacon.identity.middleware.IdentityMiddleware``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from . import metrics

log = logging.getLogger("beacon.middleware")


class OriginCheckMiddleware:
    """Refuse a handshake whose ``Origin`` is not one of the site's own (HTTP 403).

    The site's origins are Django's CSRF check's: the request's own scheme and host
    (``ws``/``wss`` read as ``http``/``https``, ``SECURE_PROXY_SSL_HEADER`` honoured,
    the host validated against ``ALLOWED_HOSTS``), plus ``CSRF_TRUSTED_ORIGINS``.
    Scheme, host and port must all match: a page on another port of the same host is
    another origin, and so is ``https://…`` against an ``http://`` site. A refusal is
    counted (``beacon_rejected_handshakes_total{reason="origin"}``) and logged with
    its reason only, never with the header's text.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            reason = origin_refusal(
                _header(scope, b"origin"),
                secure=_is_secure(scope),
                host=_host(scope),
                allowed_hosts=_allowed_hosts(),
                trusted_origins=list(getattr(settings, "CSRF_TRUSTED_ORIGINS", [])),
            )
            if reason is not None:
                metrics.rejected_handshake("origin")
                log.warning("beacon: handshake refused: origin %s", reason)
                return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)


def origin_refusal(
    origin: str | None,
    *,
    secure: bool,
    host: str | None,
    allowed_hosts: list[str],
    trusted_origins: list[str],
) -> str | None:
    """Why a handshake's ``Origin`` is refused, or None if it is one of the site's own.

    Pure: the reasons are fixed words (``missing``, ``malformed``, ``not the site's``),
    so the caller may log them.
    """
    if not origin or origin == "null":
        return "missing"
    try:
        parsed = urlsplit(origin)
        parsed.port  # noqa: B018 -- raises ValueError for a port that is not one
    except ValueError:
        return "malformed"
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.username is not None
        or parsed.password is not None
        or parsed.path
        or parsed.query
        or parsed.fragment
        or origin != origin.strip()
    ):
        return "malformed"
    normalized = f"{parsed.scheme}://{parsed.netloc}".lower()
    if host is not None:
        domain, _ = split_domain_port(host)
        if domain and validate_host(domain, allowed_hosts):
            own = f"{'https' if secure else 'http'}://{host}".lower()
            if normalized == own:
                return None
    for trusted in trusted_origins:
        if normalized == trusted.lower():
            return None
        wildcard = urlsplit(trusted)  # Django's "https://*.example.com"
        if (
            "*" in wildcard.netloc
            and wildcard.scheme == parsed.scheme
            and is_same_domain(parsed.netloc, wildcard.netloc.lstrip("*"))
        ):
            return None
    return "not the site's"


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    """A header's value; None if it is absent or sent more than once."""
    values = [v for k, v in scope.get("headers", ()) if k.lower() == name]
    return values[0].decode("latin-1") if len(values) == 1 else None


def _host(scope: dict[str, Any]) -> str | None:
    """The request's host as ``HttpRequest.get_host`` reads it (before validation)."""
    if settings.USE_X_FORWARDED_HOST:
        forwarded = _header(scope, b"x-forwarded-host")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return _header(scope, b"host")


def _is_secure(scope: dict[str, Any]) -> bool:
    """As ``HttpRequest.is_secure``: ``SECURE_PROXY_SSL_HEADER`` first, then the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        value = _header(scope, header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in ("wss", "https")


def _allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS``, with Django's own fallback under ``DEBUG``."""
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    return allowed_hosts


def allowed_hosts_origin_validator(app: Any) -> OriginCheckMiddleware:
    """The origin check Beacon puts in front of its consumers (the name is historical)."""
    return OriginCheckMiddleware(app)
