"""The client installs and runs without Django, is typed, and keeps its public API."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import beacon.client

ROOT = Path(__file__).resolve().parents[2]

# Any import of Django, Channels or Daphne fails in the interpreter these tests start.
NO_DJANGO = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("django", "channels", "daphne"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
"""


def run_without_django(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_DJANGO + code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_the_client_imports_without_django_or_server_modules() -> None:
    result = run_without_django(
        "import beacon.client, beacon.client.tail\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('beacon'))))"
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {
        "beacon",
        "beacon.client",
        "beacon.client.connection",
        "beacon.client.credentials",
        "beacon.client.exceptions",
        "beacon.client.position",
        "beacon.client.subscription",
        "beacon.client.tail",
        "beacon.exceptions",
        "beacon.protocol",
    }


def test_the_cli_runs_without_django() -> None:
    result = run_without_django(
        "sys.argv = ['beacon.client', '--help']\n"
        "import runpy; runpy.run_module('beacon.client', run_name='__main__')"
    )
    assert result.returncode == 0, result.stderr
    assert "tail" in result.stdout


def test_the_public_api_is_pinned() -> None:
    assert beacon.client.__all__ == [
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
    for name in beacon.client.__all__:
        assert getattr(beacon.client, name) is not None


def test_the_package_is_marked_typed() -> None:
    assert (ROOT / "src" / "beacon" / "py.typed").exists()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


def test_the_client_is_mypy_strict_clean() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed (it is in the [test] extra)")
    result = subprocess.run(
        # No config file: the project's [tool.mypy] loads the Django plugin (and
        # demo.settings), which the client, checked on its own, must not need.
        [mypy, "--strict", "--no-incremental", "--config-file=", "-p", "beacon.client"],
        capture_output=True,
        text=True,
        cwd=ROOT / "src",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
