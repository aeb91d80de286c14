# BASELINE: the guide's myapp/routing.py (the consumer is the BENCH ADDITION subclass).
from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r"ws/notifications/$", consumers.BroadcastNotificationConsumer.as_asgi()),
]
