"""WebSocket URL patterns and the ASGI stack Beacon expects in front of them.

In your ``asgi.py``::

    from beacon.routing import websocket_application
    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": websocket_application(),   # origin check + session auth + routes
    })

and for Server-Sent Events (``GET /beacon/events/?stream=…``, ``beacon.doors.sse``),
Django's HTTP app behind :func:`http_application`, which serves that one path
itself::

        "http": http_application(django_asgi_app),

Or include ``websocket_urlpatterns`` in your own ``URLRouter`` behind
``allowed_hosts_origin_validator(SessionAuthMiddleware(...))`` (``beacon.middleware``;
Channels' ``AllowedHostsOriginValidator(AuthMiddlewareStack(...))`` works too, at a
higher cost per socket and per frame).
"""

from __future__ import annotations

from typing import Any

from django.urls import path, re_path

from .doors.websocket import BeaconConsumer, NotificationConsumer

websocket_urlpatterns = [
    path("ws/", BeaconConsumer.as_asgi()),
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]


def websocket_application(extra_patterns: list[Any] | None = None) -> Any:
    """Beacon's routes behind the origin check and session authentication.

    A cross-origin handshake is refused with HTTP 403 before the socket opens (and
    counted in ``beacon_rejected_handshakes_total{reason="origin"}``).
    """
    from channels.routing import URLRouter

    from .middleware import SessionAuthMiddleware, allowed_hosts_origin_validator

    return allowed_hosts_origin_validator(
        SessionAuthMiddleware(URLRouter([*websocket_urlpatterns, *(extra_patterns or [])]))
    )


def http_application(django_asgi_app: Any, *, events_path: str = "beacon/events/") -> Any:
    """Django for HTTP, with Beacon's SSE endpoint at ``events_path`` in front of it.

    The endpoint authenticates as the WebSocket does (the session cookie) and needs
    no origin check: a GET that changes nothing, whose response a page of another
    origin cannot read (no CORS headers are sent).
    """
    from channels.routing import URLRouter

    from .doors.sse import EventStream
    from .middleware import SessionAuthMiddleware

    return URLRouter(
        [path(events_path, SessionAuthMiddleware(EventStream())), re_path(r"", django_asgi_app)]
    )
