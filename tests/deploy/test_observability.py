"""Metrics, JSON logs and the SIGTERM drain, in-process (the stack tests run them for real)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import uvicorn
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from beacon import metrics, shutdown
from beacon.fanout.hub import get_hub
from beacon.jsonlog import JsonLinesFormatter
from beacon.protocol import event_frame
from beacon.routing import websocket_urlpatterns

from ..servers import free_port


@pytest.mark.parametrize(
    ("data", "ts"),
    [
        ({}, 1764283200.123),
        ({"message": 'says "ts": 5, twice', "ts_like": 1}, 1700000000.5),
        ({"nested": {"ts": 1}}, 42.0),
    ],
)
def test_frame_ts_reads_the_envelopes_timestamp(data: dict[str, Any], ts: float) -> None:
    frame = event_frame(type="note", stream="user:1", seq=3, epoch="e", data=data, ts=ts)
    assert metrics.frame_ts(frame) == ts


def test_frame_ts_of_a_frame_without_one_is_none() -> None:
    assert metrics.frame_ts('{"type": "ping"}') is None


def test_json_lines_carry_the_message_but_not_a_records_extra_fields() -> None:
    record = logging.LogRecord(
        "celery.worker.strategy",
        logging.INFO,
        __file__,
        1,
        "Task %(name)s received",
        ({"name": "beacon.notify", "args": "['the body']"},),
        None,
    )
    record.data = {"kwargs": "the body"}
    line = JsonLinesFormatter().format(record)
    assert "\n" not in line and "the body" not in line
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["message"]) == (
        "INFO",
        "celery.worker.strategy",
        "Task beacon.notify received",
    )


def test_json_lines_keep_the_traceback_on_one_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord(
            "beacon", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonLinesFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: broken" in json.loads(line)["exc"]


def test_dead_processes_leave_the_live_gauge_but_keep_their_counts(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    for pid in (dead.pid, os.getpid()):
        (tmp_path / f"gauge_livesum_{pid}.db").touch()
        (tmp_path / f"counter_{pid}.db").touch()
    assert metrics.forget_dead_processes(str(tmp_path)) == [dead.pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead.pid}.db", f"counter_{os.getpid()}.db", f"gauge_livesum_{os.getpid()}.db"]
    )


def _origin_refusals() -> float:
    value = prometheus_client.REGISTRY.get_sample_value(
        "beacon_rejected_handshakes_total", {"reason": "origin"}
    )
    return value or 0.0


async def _handshake(origin: bytes) -> bool:
    from beacon.routing import websocket_application

    communicator = WebsocketCommunicator(
        websocket_application(), "/ws/", headers=[(b"origin", origin), (b"host", b"beacon.example")]
    )
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_from_a_foreign_origin_is_refused_and_counted(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["beacon.example"]
    before = _origin_refusals()
    assert not await _handshake(b"https://evil.example")
    assert _origin_refusals() == before + 1
    # Same origin: the handshake goes through (and, without a session, is closed 4001).
    assert await _handshake(b"http://beacon.example")
    assert _origin_refusals() == before + 1


def test_install_wraps_only_a_servers_handler() -> None:
    # pytest leaves SIGTERM at its default: there is no server handler to wrap.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    async def check() -> bool:
        return shutdown.install()

    assert asyncio.run(check()) is False


async def test_stop_accepting_closes_uvicorns_listeners() -> None:
    port = free_port()
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
    server = uvicorn.Server(uvicorn.Config(app=None))
    server.servers = [listener]
    assert shutdown.stop_accepting(server.handle_exit) == 1
    await listener.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.django_db(transaction=True)
async def test_drain_closes_every_socket_with_4012(
    make_user: Any, db_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutdown, "_draining", False)
    alice = await db_call(make_user, "alice")
    sockets = []
    for _ in range(2):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/")
        communicator.scope["user"] = alice
        assert (await communicator.connect())[0]
        assert json.loads(await communicator.receive_from())["type"] == "welcome"
        sockets.append(communicator)
    drained = asyncio.get_running_loop().create_task(shutdown.drain())
    for communicator in sockets:
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4012}
        await communicator.disconnect()  # the server's disconnect event, as Daphne sends it
    await drained
    assert shutdown.draining() and not get_hub().connections
