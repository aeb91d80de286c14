"""ASGI entry point: Django for HTTP, Beacon's WebSocket routes behind the origin
check and session auth (as in the guide)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from beacon.pusher.routing import pusher_websocket  # noqa: E402
from beacon.routing import http_application, websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_application(django_asgi_app),
        "websocket": pusher_websocket(websocket_application()),
    }
)

if os.environ.get("BEACON_GC_TUNED"):
    # A process holding thousands of long-lived sockets: keep what start-up made out
    # of garbage collection and collect less often. On Daphne this halved the CPU per
    # delivery of a broadcast to 5,000 (docs/benchmarks.md, "Garbage collection").
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
