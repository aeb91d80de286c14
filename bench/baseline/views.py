"""BENCH ADDITION: the publish endpoint (``bench.publishplan``) as the guide would send.

Broadcast: one ``group_send`` to the broadcast group per message. Per-user: the
guide's ``send_notification`` body (``group_send`` to ``notifications_{user_id}``),
awaited directly on the server's loop (kinder to the baseline than ``async_to_sync``).
"""

import asyncio
import json
import time

from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.http import HttpResponse

from bench import publishplan

from .consumers import BROADCAST_GROUP

_user_ids: list[int] = []


async def _bench_user_ids() -> list[int]:
    if not _user_ids:
        from channels.db import database_sync_to_async

        def load() -> list[int]:
            users = get_user_model().objects.filter(username__startswith="bench")
            return list(users.order_by("username").values_list("pk", flat=True))

        _user_ids.extend(await database_sync_to_async(load)())
    return _user_ids


async def publish(request):
    plan, rate, _ = publishplan.parse_query(request.GET.dict())
    layer = get_channel_layer()
    user_ids = await _bench_user_ids() if plan.kind == "user" else []
    started = time.monotonic()
    for done, (i, user_indexes) in enumerate(publishplan.calls(plan)):
        wait = publishplan.delay(started, done, rate, time.monotonic())
        if wait:
            await asyncio.sleep(wait)
        message = {"type": "notification_message", "message": publishplan.data(i)}
        if plan.kind == "broadcast":
            await layer.group_send(BROADCAST_GROUP, message)
        else:
            for u in user_indexes:
                await layer.group_send(f"notifications_{user_ids[u]}", message)
    body = {"published": plan.count, "elapsed": time.monotonic() - started}
    return HttpResponse(json.dumps(body), content_type="application/json")
