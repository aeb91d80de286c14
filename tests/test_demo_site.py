"""The demo site's own protections: who may read /metrics, and its Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_metrics_are_for_staff_and_allowed_addresses(django_user_model: Any) -> None:
    pytest.importorskip("prometheus_client")
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 403
    alice = django_user_model.objects.create_user("alice", password="pw")
    outsider.force_login(alice)
    assert outsider.get("/metrics").status_code == 403
    admin = Client(REMOTE_ADDR="203.0.113.9")
    admin.force_login(django_user_model.objects.create_user("root", password="pw", is_staff=True))
    assert admin.get("/metrics").status_code == 200
    local = Client(REMOTE_ADDR="127.0.0.1")
    answer = local.get("/metrics")
    assert answer.status_code == 200 and b"beacon_" in answer.content


def test_metrics_allow_list_is_a_setting(settings: Any) -> None:
    pytest.importorskip("prometheus_client")
    settings.METRICS_ALLOWED_ADDRS = ["10.0.0.7"]
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="10.0.0.7").get("/metrics").status_code == 200


def test_pages_send_a_content_security_policy_with_a_fresh_nonce(django_user_model: Any) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user("alice", password="pw"))
    first, second = client.get("/"), client.get("/")
    policy = first.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script type="importmap" nonce="{nonce}">' in first.content.decode()
    assert nonce not in second.headers["Content-Security-Policy"]
    login = Client().get("/accounts/login/")
    assert "script-src 'self'" in login.headers["Content-Security-Policy"]
