"""Database calls of different sockets do not queue on one thread (``beacon.db``).

A subscribe whose policy blocks in its database thread must not hold up another
user's handshake (session and user load) and subscribe on the same server process.
With Channels' thread-sensitive ``database_sync_to_async`` every database call of the
process ran on one thread, and the second user got no ``welcome`` until the first
policy returned.
"""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth import get_user_model

from tests.servers import Server, session_cookie
from tests.wsclient import WsClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_a_blocked_policy_does_not_hold_up_another_users_handshake(kind):
    User = get_user_model()
    slow = session_cookie(User.objects.create_user("slow", password="x"))
    other_user = User.objects.create_user("other", password="x")
    other = session_cookie(other_user)

    async def scenario() -> None:
        entered: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

        async def policy_called(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            assert await reader.readexactly(2) == b"in"
            await entered.put(writer)

        gate = await asyncio.start_server(policy_called, "127.0.0.1", 0)
        port = gate.sockets[0].getsockname()[1]
        server = Server(
            kind=kind, DJANGO_SETTINGS_MODULE="tests.doors.slowsettings", SLOW_POLICY_PORT=str(port)
        )
        await asyncio.to_thread(server.start)
        try:
            blocked = await WsClient.open(server, cookie=slow)
            await blocked.receive_type("welcome")
            await blocked.send({"op": "subscribe", "stream": "slow:1", "id": 1})
            policy = await asyncio.wait_for(entered.get(), 20)
            # The first policy is now blocked in a database thread.
            async with await WsClient.open(server, cookie=other) as client:
                welcome = await client.receive_type("welcome", timeout=10)
                assert welcome["user"] == other_user.pk
                own = f"user:{other_user.pk}"
                await client.send({"op": "subscribe", "stream": own, "id": 2})
                subscribed = await client.receive_type("subscribed", "error", timeout=10)
                assert subscribed["type"] == "subscribed", subscribed
            policy.write(b"go")
            await policy.drain()
            frame = await blocked.receive_type("subscribed", "error", timeout=10)
            assert frame["type"] == "subscribed" and frame["stream"] == "slow:1", frame
            await blocked.close()
        finally:
            gate.close()
            await asyncio.to_thread(server.stop)

    asyncio.run(scenario())
