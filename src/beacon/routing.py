"""WebSocket URL patterns and the ASGI stack Beacon expects in front of them.

In your ``asgi.py``::

    from beacon.routing import websocket_application
    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": websocket_application(),   # origin check + session auth + routes
    })

or include ``websocket_urlpatterns`` in your own ``URLRouter`` behind
``AllowedHostsOriginValidator(AuthMiddlewareStack(...))``.
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

    A cross-origin handshake is refused with HTTP 403 before the socket opens.
    """
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator

    return AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, *(extra_patterns or [])]))
    )
