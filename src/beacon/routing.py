"""WebSocket URL patterns and the ASGI stack Beacon expects in front of them.

In your ``asgi.py``::

    from beacon.routing import websocket_application
    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": websocket_application(),   # origin check + credentials + routes
    })

and for Server-Sent Events (``GET /beacon/events/?stream=…``, ``beacon.doors.sse``),
Django's HTTP app behind :func:`http_application`, which serves that one path
itself::

        "http": http_application(django_asgi_app),

Or include ``websocket_urlpatterns`` in your own ``URLRouter`` behind
``OriginCheckMiddleware(IdentityMiddleware(...))`` (``beacon.middleware``,
``beacon.identity.middleware``).
Channels' ``AllowedHostsOriginValidator`` compares hosts only, so a page on another
port of the site's host passes it with the user's cookie; and its
``AuthMiddlewareStack`` costs more per socket and per frame.
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
    """Beacon's routes behind the origin check and ``BEACON["AUTHENTICATORS"]``.

    A handshake from any origin but the site's own (scheme, host and port) is refused
    with HTTP 403 before the socket opens (and counted in
    ``beacon_rejected_handshakes_total{reason="origin"}``).
    """
    from channels.routing import URLRouter

    from .identity.middleware import IdentityMiddleware, OriginlessBearerGate
    from .middleware import OriginCheckMiddleware

    routes = IdentityMiddleware(URLRouter([*websocket_urlpatterns, *(extra_patterns or [])]))
    # An origin-less handshake with a bearer token skips the origin check (and only the
    # token counts for it): see beacon.identity.middleware.
    return OriginlessBearerGate(OriginCheckMiddleware(routes), routes)


def http_application(django_asgi_app: Any, *, events_path: str = "beacon/events/") -> Any:
    """Django for HTTP, with Beacon's SSE endpoint at ``events_path`` in front of it.

    The endpoint takes the WebSocket's credentials (``BEACON["AUTHENTICATORS"]``:
    session cookie, ``?ticket=``, ``Authorization: Bearer``), with or without an
    ``Origin`` header: a browser sends none on a same-origin ``EventSource`` request,
    and a page of another origin cannot read the response (no CORS headers are sent;
    a cross-site request carries no ``SameSite=Lax`` session cookie either).
    """
    from channels.routing import URLRouter

    from .doors.sse import EventStream
    from .identity.middleware import IdentityMiddleware

    events = IdentityMiddleware(EventStream(), originless_cookies=True)
    return URLRouter([path(events_path, events), re_path(r"", django_asgi_app)])
