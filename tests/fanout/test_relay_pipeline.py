"""On the Redis pubsub layer a batch travels as one pipeline, complete and in order."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from beacon import notify_many, publish
from beacon.fanout import relay
from beacon.fanout.hub import Hub

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []
        self.changed = asyncio.Event()

    def offer(self, stream: str | None, seq: int | None, frame: str) -> None:
        if stream is not None and seq is not None:
            self.got.append((stream, seq))
            self.changed.set()

    async def close(self, code: Any) -> None:
        pass

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()


async def layer_only(hub: Hub) -> None:
    """Wait until the hub's log watcher has made its first read of the log (on
    PostgreSQL it then only listens), so that what reaches the hub came by the layer:
    a watcher's first poll after the publish would bring the events too."""
    from django.db import connection

    if connection.vendor == "postgresql":
        async with asyncio.timeout(10):
            await hub.watcher.listening.wait()


@pytest.fixture
def pubsub(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": secrets.token_hex(4)},
        }
    }
    settings.BEACON = {"LOG_POLL_SECONDS": 600}  # only the layer can bring events


async def test_a_batch_is_one_pipeline_and_arrives_whole_and_in_order(
    pubsub: None, db_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines: list[int] = []
    send = relay._pipeline

    async def counted(shard: Any, messages: list[tuple[str, bytes]]) -> None:
        pipelines.append(len(messages))
        await send(shard, messages)

    monkeypatch.setattr(relay, "_pipeline", counted)
    def make_users() -> list[Any]:  # no password hashing: 30 of those are slow here
        model = get_user_model()
        model.objects.bulk_create([model(username=f"u{i}") for i in range(30)])
        return list(model.objects.filter(username__startswith="u"))

    users = await db_call(make_users)
    hub = Hub(asyncio.get_running_loop())  # not registered: only the layer feeds it
    sink = Recorder()
    await hub.attach(sink)
    try:
        for user in users:
            await hub.add(f"user:{user.pk}", sink, 0)
        await hub.add("news:1", sink, 0)
        await layer_only(hub)
        await database_sync_to_async(notify_many)(users, "all of you")
        await sink.wait_for(len(users))
        assert sorted(sink.got) == sorted((f"user:{u.pk}", 1) for u in users)
        assert pipelines == [len(users)]

        def burst() -> None:
            for n in range(40):
                publish("news:1", "item", {"n": n})

        sink.got.clear()
        await database_sync_to_async(burst)()
        await sink.wait_for(40)
        assert sink.got == [("news:1", seq) for seq in range(1, 41)]  # in order
    finally:
        await hub.detach(sink)


async def test_a_redis_that_runs_no_scripts_gets_the_batch_as_a_pipeline(
    pubsub: None, db_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import ResponseError

    refused: list[str] = []

    async def no_scripts(self: Any, script: str, *args: Any) -> Any:
        refused.append(script)
        raise ResponseError("NOPERM this user has no permissions to run the 'eval' command")

    monkeypatch.setattr(Redis, "eval", no_scripts)

    def make_users() -> list[Any]:
        model = get_user_model()
        model.objects.bulk_create([model(username=f"v{i}") for i in range(12)])
        return list(model.objects.filter(username__startswith="v"))

    users = await db_call(make_users)
    hub = Hub(asyncio.get_running_loop())
    sink = Recorder()
    await hub.attach(sink)
    try:
        for user in users:
            await hub.add(f"user:{user.pk}", sink, 0)
        await layer_only(hub)
        for round in (1, 2):
            await database_sync_to_async(notify_many)(users, f"round {round}")
            await sink.wait_for(round * len(users))
        assert sorted(sink.got) == sorted((f"user:{u.pk}", r) for u in users for r in (1, 2))
        assert refused == ["return 1"]  # asked once, then pipelines
    finally:
        await hub.detach(sink)
