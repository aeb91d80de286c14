"""The demo's URLs plus ``/test/flood``: publish many big events inside the server.

``/test/flood?stream=S&count=N&size=B`` appends ``N`` events of about ``B`` bytes to
``S`` in one transaction and answers once the process's hub has dispatched them all
(or the socket is gone: closed as too slow), so that they have been offered to the
socket before the client reads again (on the Redis layer they come back a moment
after the commit).
"""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from beacon.fanout.hub import get_hub
from beacon.publishing import publish
from demo.urls import urlpatterns as demo_urlpatterns


def _publish(stream: str, count: int, size: int) -> int:
    with transaction.atomic():
        for i in range(count):
            last = publish(stream, "flood", {"i": i, "pad": "x" * size}).seq
    return last


async def flood(request: HttpRequest) -> JsonResponse:
    stream = request.GET["stream"]
    count, size = int(request.GET["count"]), int(request.GET["size"])
    last = await sync_to_async(_publish)(stream, count, size)
    hub = get_hub()
    async with asyncio.timeout(30):
        while stream in hub.subscribers and hub.known.get(stream, 0) < last:
            await asyncio.sleep(0.01)
    return JsonResponse({"published": count})


urlpatterns = [path("test/flood", flood), *demo_urlpatterns]
