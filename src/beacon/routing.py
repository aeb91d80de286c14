"""WebSocket URL patterns and the ASGI stack Beacon expects in front of them.

In your ``asgi.py``::

    from beacon.routing import websocket_application
    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": websocket_application(),   # origin check + session auth + routes
    })

or include ``websocket_urlpatterns`` in your own ``URLRouter`` behind
``OriginCheckMiddleware(SessionAuthMiddleware(...))`` (``beacon.middleware``).
Channels' ``AllowedHostsOriginValidator`` compares hosts only, so a page on another
port of the site's host passes it with the user's cookie; and its
``AuthMiddlewareStack`` costs more per socket and per frame.
"""

from __future__ import annotations

from typing import Any

from django.urls import path

from .consumers import BeaconConsumer, NotificationConsumer

websocket_urlpatterns = [
    path("ws/", BeaconConsumer.as_asgi()),
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]


def websocket_application(extra_patterns: list[Any] | None = None) -> Any:
    """Beacon's routes behind the origin check and session authentication.

    A handshake from any origin but the site's own (scheme, host and port) is refused
    with HTTP 403 before the socket opens (and counted in
    ``beacon_rejected_handshakes_total{reason="origin"}``).
    """
    from channels.routing import URLRouter

    from .middleware import OriginCheckMiddleware, SessionAuthMiddleware

    return OriginCheckMiddleware(
        SessionAuthMiddleware(URLRouter([*websocket_urlpatterns, *(extra_patterns or [])]))
    )
