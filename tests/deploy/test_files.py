"""The shipped deploy files are valid as they are: ``nginx -t``, ``systemd-analyze
verify`` (any output counts as a failure: it exits 0 on some warnings), and
``manage.py check --deploy`` with the example environment."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from ..servers import manage, server_env
from .stack import DEPLOY, PREFIX, ROOT, Nginx, exec_start, make_certificate, production_env

UNITS = sorted(p.name for p in (DEPLOY / "systemd").iterdir())


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    nginx = Nginx(tmp_path / "nginx", [8001, 8002], tmp_path / "static", cert, key)
    result = nginx.test()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_deploy_ships_the_units_the_docs_name() -> None:
    assert UNITS == [
        "beacon-prune.service",
        "beacon-prune.timer",
        "beacon-uvicorn@.service",
        "beacon-worker.service",
        "beacon.target",
        "beacon@.service",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path) -> None:
    # Only the install prefix changes: ExecStart must name a real executable.
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text().replace(PREFIX, str(ROOT))
        (tmp_path / name).write_text(text)
    instances = ["beacon@8001.service", "beacon-uvicorn@8001.service"]
    names = [n for n in UNITS if "@." not in n] + instances
    result = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.django_db(transaction=True)
def test_the_prune_units_command_runs_in_the_production_environment() -> None:
    env = server_env(**production_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50)))
    result = subprocess.run(
        exec_start("beacon-prune.service"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_check_deploy_passes_with_the_example_environment() -> None:
    env = production_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = production_env()  # the example leaves DJANGO_SECRET_KEY empty on purpose
    assert env["DJANGO_SECRET_KEY"] == ""
    with pytest.raises(subprocess.CalledProcessError) as failed:
        manage("check", **env)
    assert "DJANGO_SECRET_KEY must be set" in failed.value.stderr
