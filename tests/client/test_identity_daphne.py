"""The client's ticket and bearer token against real Daphne processes.

These need the server side of the identity issue (``beacon.identity``: ``POST
/beacon/tickets/``, ``?ticket=``, ``Authorization: Bearer``, 4401) and PyJWT; until both
are installed they skip.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

import beacon
from beacon.client import Client, Event, Unauthenticated, ticket_fetcher
from beacon.streams import user_stream

from ..servers import ROOT, Server, running, server_env, session_cookie

pytest.importorskip("beacon.identity", reason="the identity issue's server side")
jwt = pytest.importorskip("jwt")

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"min_delay": 0.05, "max_delay": 0.5}


@pytest.fixture
def alice(make_user: Callable[[str], Any]) -> Any:
    return make_user("alice")


def token_for(user: Any, seconds: float = 300) -> str:
    """An access token as djangorestframework-simplejwt makes it by default."""
    claims = {"user_id": user.pk, "token_type": "access", "exp": int(time.time() + seconds)}
    return str(jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256"))


async def next_event(sub: Any, timeout: float = 20) -> Event:
    async with asyncio.timeout(timeout):
        async for item in sub:
            if isinstance(item, Event) and item.seq is not None:
                return item
    raise AssertionError("the subscription ended")


async def test_a_bearer_token_connects_without_a_cookie_or_an_origin(
    alice: Any, db_call: Any
) -> None:
    with running() as server:
        for origin in (None, ""):
            async with Client(
                f"{server.ws_url}/ws/", token=token_for(alice), origin=origin
            ) as client:
                sub = await client.subscribe(user_stream(alice))
                await db_call(beacon.notify, alice, "for the token")
                assert (await next_event(sub)).data["message"] == "for the token"
                assert client.user == alice.pk
        with pytest.raises(Unauthenticated) as info:
            await Client(f"{server.ws_url}/ws/", token="not-a-jwt", **FAST).connect()
        assert info.value.code == 4001


async def test_a_new_ticket_is_fetched_for_every_connect(alice: Any, db_call: Any) -> None:
    server = Server().start()
    try:
        fetch = ticket_fetcher(f"{server.url}/beacon/tickets/", token=token_for(alice))
        tickets: list[str] = []

        async def get_ticket() -> str:
            tickets.append(await fetch())
            return tickets[-1]

        async with Client(f"{server.ws_url}/ws/", ticket=get_ticket, **FAST) as client:
            sub = await client.subscribe(user_stream(alice))
            await db_call(beacon.notify, alice, "one")
            assert (await next_event(sub)).seq == 1
            server.kill()
            await db_call(beacon.notify, alice, "two")  # while the server is down
            server = Server(port=server.port).start()
            assert (await next_event(sub, timeout=60)).data["message"] == "two"
            assert client.connections == 2 and sub.recovered is True
        assert len(tickets) >= 2 and len(set(tickets)) == len(tickets)  # single use
    finally:
        server.stop()


async def test_a_ticket_fetched_with_a_session_cookie(alice: Any, db_call: Any) -> None:
    cookie = "sessionid=" + await db_call(session_cookie, alice)
    with running() as server:
        fetch = ticket_fetcher(f"{server.url}/beacon/tickets/", cookie=cookie)
        async with Client(f"{server.ws_url}/ws/", ticket=fetch) as client:
            assert client.user == alice.pk


async def test_an_expiring_token_is_renewed_by_its_callable(alice: Any) -> None:
    issued: list[str] = []

    async def renew() -> str:
        issued.append(token_for(alice, seconds=2))
        return issued[-1]

    with running() as server:
        async with Client(f"{server.ws_url}/ws/", token=renew, **FAST) as client:
            await client.subscribe(user_stream(alice))
            async with asyncio.timeout(30):
                while client.connections < 2:  # closed with 4401 when exp passes
                    await asyncio.sleep(0.1)
            assert client.state != "disconnected" and len(issued) >= 2


async def test_the_tail_command_with_a_token_and_with_a_ticket_url(
    alice: Any, db_call: Any
) -> None:
    await db_call(beacon.notify, alice, "n1")
    with running() as server:
        for credentials in (
            ["--token", token_for(alice)],
            ["--ticket-url", f"{server.url}/beacon/tickets/", "--token", token_for(alice)],
        ):
            tail = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "beacon.client", "tail", server.url, user_stream(alice),
                "--since", "0", "--count", "1", *credentials,
                cwd=ROOT, env=server_env(), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            async with asyncio.timeout(30):
                out, err = await tail.communicate()
            assert tail.returncode == 0, err
            assert json.loads(out)["message"] == "n1"
