"""Beacon's Python asyncio client: follow durable streams from services, bots and tests.

Installs without Django (``pip install "django-beacon[client]"``); it imports only the
pure ``beacon.protocol`` from the server side. See docs/client-python.md::

    from beacon.client import Client

    async with Client("ws://127.0.0.1:8000/ws/", token=token) as client:
        sub = await client.subscribe("user:7")
        async for event in sub:
            print(event.type, event.seq, event.data)

The public API is what ``__all__`` lists.
"""

from __future__ import annotations

from .connection import Client
from .credentials import ticket_fetcher
from .exceptions import (
    ClientClosed,
    ClientError,
    Closed,
    Forbidden,
    Refused,
    RequestTimeout,
    Unauthenticated,
)
from .position import StreamPosition, backoff_delay
from .subscription import Ack, Event, Subscribed, Subscription, merge

__all__ = [
    "Ack",
    "Client",
    "ClientClosed",
    "ClientError",
    "Closed",
    "Event",
    "Forbidden",
    "Refused",
    "RequestTimeout",
    "StreamPosition",
    "Subscribed",
    "Subscription",
    "Unauthenticated",
    "backoff_delay",
    "merge",
    "ticket_fetcher",
]
