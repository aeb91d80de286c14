"""The README's "Use it in your project", followed as a newcomer would.

Its ``asgi.py`` is copied as written into a fresh project, served by plain ``daphne``
(no ``runserver``, no ``DJANGO_SETTINGS_MODULE`` in the environment): ``beacon.js``
loads and ``/ws/`` answers with Beacon's protocol.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets

from .servers import ROOT, free_port, wait_for_port

SETTINGS = """
SECRET_KEY = "readme-test-key-readme-test-key-readme-test-key-0123456789"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "beacon",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "myproject.urls"
ASGI_APPLICATION = "myproject.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
STATIC_URL = "static/"
USE_TZ = True
"""

URLS = """
from django.urls import include, path

urlpatterns = [path("beacon/", include("beacon.urls"))]
"""


def readme_asgi() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"`myproject/asgi.py`, the whole file.*?```python\n(.*?)```", text, re.S)
    assert match, "README shows myproject/asgi.py as a whole file"
    return match[1]


def test_the_readme_asgi_py_works_as_a_whole_file_under_plain_daphne(tmp_path: Path) -> None:
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "__init__.py").write_text("")
    (project / "settings.py").write_text(SETTINGS)
    (project / "urls.py").write_text(URLS)
    (project / "asgi.py").write_text(readme_asgi())
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(tmp_path)
    port = free_port()
    log = (tmp_path / "daphne.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "myproject.asgi:application"],
        cwd=tmp_path, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        wait_for_port(port, process, "daphne")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/beacon/beacon.js") as r:
            assert r.status == 200
            assert "javascript" in r.headers["Content-Type"]
            assert b"export function sharedClient" in r.read()

        async def handshake() -> int | None:
            url = f"ws://127.0.0.1:{port}/ws/"
            async with websockets.connect(url, origin=f"http://127.0.0.1:{port}") as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                return ws.close_code

        assert asyncio.run(handshake()) == 4001  # Beacon's "sign in first", not a 404
    finally:
        process.terminate()
        process.wait(10)
        log.close()
