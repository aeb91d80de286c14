"""The shipped deploy files, run for real on loopback ports of their own.

Everything here starts from ``deploy/``: server and worker command lines are the
systemd units' ``ExecStart`` lines, the environment is ``beacon.env.example``, and
Nginx runs the shipped site config. Only what must differ on a test machine is
substituted (install prefix, ports, certificate and static paths), and every
substitution must find its target, so a reshaped deploy file fails the tests
instead of being silently skipped.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..servers import ROOT, Server, free_port, server_env, wait_for_port

DEPLOY = ROOT / "deploy"
PREFIX = "/srv/beacon"


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"{old!r} is no longer in the deploy file")
        text = text.replace(old, new)
    return text


def exec_start(unit: str, instance: str = "") -> list[str]:
    """A unit's ``ExecStart`` command, for this checkout instead of ``/srv/beacon``."""
    lines = [
        line
        for line in (DEPLOY / "systemd" / unit).read_text().splitlines()
        if line.startswith("ExecStart=")
    ]
    assert len(lines) == 1, f"{unit} must have one ExecStart line"
    command = lines[0].split("=", 1)[1].replace("%i", instance).replace(PREFIX, str(ROOT))
    return shlex.split(command)


def unit_environment(unit: str) -> dict[str, str]:
    """A unit's own ``Environment=`` settings."""
    env = {}
    for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line.split("=", 1)[1].partition("=")
            env[key] = value.replace(PREFIX, str(ROOT))
    return env


def example_env() -> dict[str, str]:
    """``deploy/beacon.env.example`` as a dict (comments and blank lines dropped)."""
    env = {}
    for line in (DEPLOY / "beacon.env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.replace(PREFIX, str(ROOT))
    return env


def production_env(**overrides: str) -> dict[str, str]:
    """The production environment of the example file, with the test's own services.

    ``DATABASE_URL`` is left to ``server_env`` (the test database).
    """
    env = example_env()
    env.pop("DATABASE_URL")
    env.update(overrides)
    return env


class UnitServer(Server):
    """A server process started with a systemd unit's ExecStart line."""

    def __init__(self, unit: str, log_dir: Path, **env: str) -> None:
        super().__init__(kind=unit.split("@")[0], **{**unit_environment(unit), **env})
        self.unit = unit
        self.log_path = log_dir / f"{self.kind}-{self.port}.log"

    def command(self) -> list[str]:
        return exec_start(self.unit, str(self.port))


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the stack speaks HTTPS, as deployed)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


MAIN_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/beacon.conf;
}}
"""


@dataclass
class Nginx:
    """Nginx as root without systemd, running the shipped site config."""

    folder: Path
    upstreams: list[int]
    static: Path
    cert: Path
    key: Path
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        site = (DEPLOY / "nginx" / "beacon.conf").read_text()
        site = substitute(
            site,
            {
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
                "server 127.0.0.1:8001 ": f"server 127.0.0.1:{self.upstreams[0]} ",
                "server 127.0.0.1:8002 ": f"server 127.0.0.1:{self.upstreams[1]} ",
                "/etc/letsencrypt/live/beacon.example.com/fullchain.pem": str(self.cert),
                "/etc/letsencrypt/live/beacon.example.com/privkey.pem": str(self.key),
                f"{PREFIX}/staticfiles/": f"{self.static}/",
            },
        )
        (self.folder / "beacon.conf").write_text(site)
        (self.folder / "nginx.conf").write_text(MAIN_CONF.format(folder=self.folder))

    def args(self) -> list[str]:
        return [
            "nginx",
            "-p",
            str(self.folder),
            "-e",
            str(self.folder / "error.log"),
            "-c",
            str(self.folder / "nginx.conf"),
        ]

    def test(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.args(), "-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        self.process = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.https_port, self.process, "nginx")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ws_base(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


class Worker:
    """The Celery worker of ``beacon-worker.service``."""

    unit = "beacon-worker.service"

    def __init__(self, log_dir: Path, **env: str) -> None:
        self.env = {**unit_environment(self.unit), **env}
        self.log_path = log_dir / "celery-worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            exec_start("beacon-worker.service"),
            cwd=ROOT,
            env=server_env(**self.env),
            stdout=log,
            stderr=log,
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # warm shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def http(
    url: str,
    *,
    context: ssl.SSLContext | None = None,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request without following redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def nginx_fail_timeout() -> float:
    """Seconds Nginx skips an upstream after a failed connect (``fail_timeout`` in
    ``deploy/nginx/beacon.conf``)."""
    found = re.findall(r"fail_timeout=(\d+)s", (DEPLOY / "nginx" / "beacon.conf").read_text())
    return float(max(found, key=int)) if found else 10.0


def backend_connections(ports: list[int]) -> dict[int, int]:
    """Established TCP connections to each port on 127.0.0.1 (whom Nginx proxies to)."""
    counts = dict.fromkeys(ports, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        port = int(remote.split(":")[1], 16)
        if state == "01" and port in counts:
            counts[port] += 1
    return counts


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file, parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus's text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if sample == name and got == want:
            return float(value)
    return 0.0


def stop_all(*processes: Any) -> None:
    """Stop each process; one that fails to stop does not keep the others running."""
    for process in processes:
        with contextlib.suppress(Exception):
            process.stop()
