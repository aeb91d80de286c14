"""The Pusher system checks: a malformed ``PUSHER_APPS``, the demo secret under
``--deploy``, a fallback namespace without a policy."""

from __future__ import annotations

import secrets
import subprocess

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from ..deploy.stack import production_env
from ..servers import manage


def ids(**kwargs: object) -> set[str]:
    return {m.id for m in run_checks(**kwargs) if m.id and m.id.startswith("beacon.")}


def test_a_malformed_app_is_an_error() -> None:
    with override_settings(BEACON={"PUSHER_APPS": [{"id": "abc", "key": "k", "secret": "s"}]}):
        assert "beacon.E020" in ids()


def test_a_namespace_without_a_policy_is_a_warning() -> None:
    app = {"id": "1", "key": "k", "secret": "s", "namespace": "nobody"}
    with override_settings(BEACON={"PUSHER_APPS": [app]}):
        assert "beacon.W020" in ids()


def test_the_demo_secret_is_refused_under_deploy_only() -> None:
    app = {"id": "1", "key": "k", "secret": "demo-secret"}
    with override_settings(BEACON={"PUSHER_APPS": [app]}):
        assert "beacon.E021" in ids(include_deployment_checks=True)
        assert "beacon.E021" not in ids()
    with override_settings(BEACON={"PUSHER_APPS": [{**app, "secret": secrets.token_hex(16)}]}):
        assert "beacon.E021" not in ids(include_deployment_checks=True)


def test_production_with_the_demo_secret_fails_check_deploy() -> None:
    env = production_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), BEACON_PUSHER_SECRET="demo-secret"
    )
    with pytest.raises(subprocess.CalledProcessError) as failed:
        manage("check", "--deploy", **env)
    assert "beacon.E021" in failed.value.stderr
    # A real secret passes (the example environment, with the door turned on).
    env["BEACON_PUSHER_SECRET"] = secrets.token_urlsafe(32)
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert "System check identified no issues" in result.stdout
