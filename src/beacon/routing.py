"""WebSocket URL patterns and the ASGI stack Beacon expects in front of them.

In your ``asgi.py``::

    from beacon.routing import websocket_application
    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": websocket_application(),   # origin check + credentials + routes
    })

or include ``websocket_urlpatterns`` in your own ``URLRouter`` behind
``OriginCheckMiddleware(IdentityMiddleware(...))`` (``beacon.middleware``,
``beacon.identity.middleware``).
Channels' ``AllowedHostsOriginValidator`` compares hosts only, so a page on another
port of the site's host passes it with the user's cookie; and its
``AuthMiddlewareStack`` costs more per socket and per frame.
"""

from __future__ import annotations

from typing import Any

from django.urls import path

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
