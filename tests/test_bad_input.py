"""Every bad input gets its documented answer — never ``internal``, 1011 or a 500 — on
real Daphne and Uvicorn processes and the real HTTP views, and no client text reaches
the server's log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from beacon.chat.models import Room
from beacon.identity.control import CONTROL_STREAM
from beacon.models import Stream

from .servers import Server, running, session_cookie
from .wsclient import WsClient

pytestmark = pytest.mark.django_db(transaction=True)

#: Put in the bad inputs: it must not show up in the server's log.
MARK = "zq9mark"

# (frame text, the error code that answers it); ``{room}`` is a room's id.
BAD_FRAMES = [
    # A lone surrogate in each string a client frame carries.
    ('{"op":"subscribe","stream":"user:' + MARK + '\\ud800"}', "bad_frame"),
    ('{"op":"subscribe","stream":"room:{room}","id":"' + MARK + '\\udfff"}', "bad_frame"),
    ('{"op":"ping","id":"\\ud800"}', "bad_frame"),
    (
        '{"op":"publish","stream":"room:{room}","type":"message",'
        '"data":{"text":"' + MARK + '\\ud800"},"client_id":"c1"}',
        "bad_frame",
    ),
    (
        '{"op":"publish","stream":"room:{room}","type":"message",'
        '"data":{"text":"hi"},"client_id":"' + MARK + '\\udbff"}',
        "bad_frame",
    ),
    ('{"op":"typing","stream":"room:{room}","\\ud800":1}', "bad_frame"),
    # One stream, one name: room 2 is ``room:2``, never ``room:02``.
    ('{"op":"subscribe","stream":"room:0{room}"}', "invalid_stream"),
    ('{"op":"subscribe","stream":"room:00{room}","since":0}', "invalid_stream"),
    (
        '{"op":"publish","stream":"room:0{room}","type":"message","data":{"text":"hi"},'
        '"client_id":"c2"}',
        "invalid_stream",
    ),
    ('{"op":"read","stream":"room:0{room}","up_to":1}', "invalid_stream"),
    ('{"op":"subscribe","stream":"user:0{user}"}', "invalid_stream"),
    ('{"op":"subscribe","stream":"rooms:0{user}"}', "invalid_stream"),
    ('{"op":"read","stream":"user:{user}","up_to":' + str(2**64) + "}", "bad_frame"),
]


@pytest.fixture(params=["daphne", "uvicorn"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running(kind=request.param) as server:
        yield server


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


@pytest.fixture
def room(make_room: Any) -> Room:
    return make_room("lobby")


@pytest.fixture
def make_room(django_db_blocker: Any) -> Any:
    def make(name: str) -> Room:
        with django_db_blocker.unblock():
            return Room.objects.create(name=name)

    return make


def server_log(server: Server) -> str:
    return server.log_path.read_text(errors="replace")


async def test_bad_frames_get_their_documented_error_and_the_socket_lives_on(
    server: Server, alice: Any, room: Room, db_call: Any
) -> None:
    cookie = await db_call(session_cookie, alice)
    async with await WsClient.open(server, cookie=cookie) as client:
        await client.receive_type("welcome")
        for text, code in BAD_FRAMES:
            text = text.replace("{room}", str(room.pk)).replace("{user}", str(alice.pk))
            await client.ws.send(text)
            error = await client.receive_type("error")
            assert error["code"] == code, (text, error)
            await client.send({"op": "ping", "id": "alive"})
            assert (await client.receive_type("pong"))["ref"] == "alive"
    # No alias made a stream row, and the room's own name still works. (The identity
    # registry's own control stream is Beacon's, made when the first socket connects.)
    names = await db_call(
        lambda: sorted(Stream.objects.exclude(name=CONTROL_STREAM).values_list("name", flat=True))
    )
    assert names == []
    log = server_log(server)
    assert MARK not in log and "Traceback" not in log and "UnicodeEncodeError" not in log


@pytest.mark.parametrize("since", ["²", "①", "١٢", "-1", "1e3", "9" * 19])
async def test_a_bad_since_on_ws_notifications_gets_bad_frame_not_1011(
    server: Server, alice: Any, db_call: Any, since: str
) -> None:
    from urllib.parse import quote

    cookie = await db_call(session_cookie, alice)
    path = f"/ws/notifications/?since={quote(since)}&{MARK}=1"
    async with await WsClient.open(server, path=path, cookie=cookie) as client:
        error = await client.receive_type("error")
        assert error["code"] == "bad_frame"
        await client.send({"op": "ping", "id": 1})
        assert (await client.receive_type("pong"))["ref"] == 1
    log = server_log(server)
    assert "Traceback" not in log and MARK not in log


async def test_frame_size_is_counted_in_utf8_bytes(
    server: Server, alice: Any, db_call: Any
) -> None:
    """60,000 times U+1F600 is 60,000 characters but 240,000 bytes: over the 64 KiB limit."""
    cookie = await db_call(session_cookie, alice)
    async with await WsClient.open(server, cookie=cookie) as client:
        await client.receive_type("welcome")
        await client.ws.send('{"op":"ping","pad":"' + "\U0001f600" * 20_000 + '"}')  # 80 KB
        with pytest.raises(ConnectionClosed) as info:
            await client.receive_type("pong")
        assert info.value.rcvd is not None and info.value.rcvd.code == 4009


# -- HTTP ------------------------------------------------------------------------------

DEEP = b"[" * 50_000


@pytest.mark.parametrize(
    "body",
    [DEEP, b'{"up_to":' + DEEP + b"}", b'{"up_to":' + str(2**64).encode() + b"}",
     b'{"up_to":1e400}', b'{"up_to":"\\ud800"}', b"\xff\xfe\x00", b"[]", b'{"seq":-1}'],
)
def test_bad_json_bodies_get_a_400_json_error(
    client: Any, alice: Any, room: Room, body: bytes
) -> None:
    client.force_login(alice)
    for url in ("/beacon/notifications/read/", f"/rooms/api/rooms/{room.pk}/read/"):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content[:200])
        assert response.json()["error"] in {"bad_json", "bad_request"}


def test_huge_numbers_stop_before_the_orm(client: Any, alice: Any) -> None:
    client.force_login(alice)
    response = client.post(
        "/beacon/notifications/read/", {"seq": 2**63}, content_type="application/json"
    )
    assert response.status_code == 400
    response = client.post(
        "/beacon/notifications/read/", {"seq": 2**63 - 1}, content_type="application/json"
    )
    assert response.status_code == 200  # the largest seq a bigint holds: nothing to mark


@pytest.mark.parametrize("query", ["before=²", "before=①", "limit=٣", "before=" + "9" * 19])
def test_bad_query_numbers_get_a_400(client: Any, alice: Any, query: str) -> None:
    client.force_login(alice)
    for url in ("/beacon/notifications/", f"/beacon/streams/user:{alice.pk}/events/"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 400, url
        assert response.json()["error"] == "bad_request"


def test_a_non_canonical_stream_name_is_refused_over_http_and_makes_no_row(
    client: Any, alice: Any, room: Room
) -> None:
    client.force_login(alice)
    for name in (f"room:0{room.pk}", f"room:00{room.pk}", f"user:0{alice.pk}"):
        response = client.get(f"/beacon/streams/{name}/events/")
        assert response.status_code == 400, name
        assert response.json()["error"] == "invalid_stream"
    # force_login rotates the session key: the old session's deletion is a control order,
    # a row of Beacon's internal stream, not one the request named.
    assert not Stream.objects.exclude(name=CONTROL_STREAM).exists()
    response = client.get(f"/beacon/streams/room:{room.pk}/events/")
    assert response.status_code == 200
    assert json.loads(response.content)["stream"] == f"room:{room.pk}"


def test_refused_http_requests_leave_no_client_text_in_the_log(
    client: Any, alice: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(alice)
    with caplog.at_level(logging.DEBUG):
        assert client.get(f"/beacon/streams/{MARK}:1/events/").status_code == 404
        assert client.get(f"/beacon/streams/{MARK}/events/").status_code == 400
        assert client.get(f"/beacon/notifications/?before={MARK}").status_code == 400
        response = client.post(
            "/beacon/notifications/read/", DEEP, content_type="application/json"
        )
        assert response.status_code == 400
    assert MARK not in caplog.text
