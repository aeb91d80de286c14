"""``node --test tests/js/pusher/live.mjs``: pusher-js's own scenarios in Node, against
a real Daphne process (connect, presence, whispers, refusal, cache miss, sign-in)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from ..servers import Server, session_cookie
from .clients import CSRF, JS, KEY, node_modules

pytestmark = pytest.mark.django_db(transaction=True)


def test_pusher_js_scenarios_in_node(make_user: Any, django_db_blocker: Any) -> None:
    node_modules()
    node = shutil.which("node")
    assert node, "node is not installed"
    alice, bob = make_user("alice"), make_user("bob")
    with django_db_blocker.unblock():
        server = Server()
        server.start()
    try:
        env = {
            **os.environ,
            "PORT": str(server.port),
            "KEY": KEY,
            "ALICE": session_cookie(alice),
            "BOB": session_cookie(bob),
            "CSRF": CSRF,
        }
        result = subprocess.run(
            [node, "--test", "--test-reporter=tap", str(JS / "live.mjs")],
            cwd=JS,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 5" in result.stdout and "# fail 0" in result.stdout
