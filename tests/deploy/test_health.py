"""``/beacon/healthz``: 200 while the database and Redis answer, 503 while Redis is
down, 200 again once it is back (a redis-server of the test's own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..servers import RedisServer
from .stack import UnitServer, http

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def health(server: UnitServer) -> tuple[int, dict[str, str]]:
    status, _, body = http(f"{server.url}/beacon/healthz")
    return status, json.loads(body)


def test_healthz_reports_redis_down_with_503_and_recovers(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    redis = RedisServer(tmp_path).start()
    server = UnitServer(
        "beacon@.service",
        tmp_path,
        REDIS_URL=redis.url,
        BEACON_REDIS_PREFIX="health",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    try:
        server.start()
        assert health(server) == (200, {"status": "ok", "database": "ok", "channel_layer": "ok"})
        redis.stop()
        status, body = health(server)
        assert (status, body["status"], body["database"]) == (503, "error", "ok")
        assert body["channel_layer"].startswith("error: ")
        redis = RedisServer(tmp_path, port=redis.port).start()
        assert health(server)[0] == 200
    finally:
        server.stop()
        redis.stop()
