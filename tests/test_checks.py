"""System checks (docs/checks.md) and where presence finds its Redis."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from beacon.presence import RedisPresenceStore, make_store, redis_url

PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
CORE = "channels_redis.core.RedisChannelLayer"
MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def beacon_ids(*, deploy: bool = False) -> dict[str, str]:
    found = run_checks(include_deployment_checks=deploy)
    return {m.id: m.msg for m in found if m.id and m.id.startswith("beacon.")}


@pytest.fixture(autouse=True)
def plain(settings: Any) -> None:
    """One process, no Redis: the demo's embedded settings, whatever the run's env."""
    settings.CHANNEL_LAYERS = MEMORY
    settings.REDIS_URL = ""
    settings.BEACON = {}
    settings.ALLOWED_HOSTS = ["127.0.0.1"]


def test_the_demo_settings_pass_every_beacon_check() -> None:
    assert beacon_ids() == {}


def test_w001_names_daphne_and_channels(settings: Any) -> None:
    apps = [a for a in settings.INSTALLED_APPS if a not in ("daphne", "channels")]
    with override_settings(INSTALLED_APPS=apps):
        ids = beacon_ids()
    assert "'daphne'" in ids["beacon.W001"] and "'channels'" in ids["beacon.W001"]


def test_w003_runserver_without_daphne_is_wsgi(settings: Any) -> None:
    with override_settings(INSTALLED_APPS=[a for a in settings.INSTALLED_APPS if a != "daphne"]):
        ids = beacon_ids()
    assert "beacon.W001" not in ids
    assert "runserver" in ids["beacon.W003"] and "/ws/" in ids["beacon.W003"]


def test_w007_without_staticfiles_nothing_serves_beacon_js(settings: Any) -> None:
    apps = [a for a in settings.INSTALLED_APPS if a != "django.contrib.staticfiles"]
    with override_settings(INSTALLED_APPS=apps):
        ids = beacon_ids()
    assert "beacon/beacon.js" in ids["beacon.W007"]


def test_w002_looks_at_the_layer_beacon_uses(settings: Any) -> None:
    hosts = {"hosts": ["redis://127.0.0.1:6379/0"]}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": PUBSUB, "CONFIG": hosts},
        "events": {"BACKEND": CORE, "CONFIG": hosts},
    }
    assert "beacon.W002" not in beacon_ids()
    settings.BEACON = {"CHANNEL_LAYER": "events"}
    assert "beacon.W002" in beacon_ids()
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": CORE, "CONFIG": hosts},
        "events": {"BACKEND": PUBSUB, "CONFIG": hosts},
    }
    assert "beacon.W002" not in beacon_ids()


def test_w004_a_redis_layer_with_presence_in_memory(settings: Any) -> None:
    sentinel = {"sentinels": [("127.0.0.1", 26379)], "master_name": "main"}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": PUBSUB, "CONFIG": {"hosts": [sentinel]}}}
    assert "beacon.W004" in beacon_ids()
    settings.BEACON = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert "beacon.W004" not in beacon_ids()
    settings.BEACON = {"REDIS_URL": ""}  # explicitly in memory, under a Redis layer
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": PUBSUB, "CONFIG": {"hosts": ["redis://r"]}}}
    assert "beacon.W004" in beacon_ids()


def test_deploy_checks_warn_on_the_memory_layer_and_any_host(settings: Any) -> None:
    assert "beacon.W005" not in beacon_ids()  # only with --deploy
    assert "beacon.W005" in beacon_ids(deploy=True)
    assert "beacon.W006" not in beacon_ids(deploy=True)
    settings.ALLOWED_HOSTS = ["*"]
    assert "beacon.W006" in beacon_ids(deploy=True)
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": PUBSUB, "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}
    }
    assert "beacon.W005" not in beacon_ids(deploy=True)


def test_presence_takes_its_redis_from_beacon_then_the_layer(settings: Any) -> None:
    assert redis_url() == ""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": PUBSUB, "CONFIG": {"hosts": ["redis://10.0.0.1:6379/2"]}}
    }
    assert redis_url() == "redis://10.0.0.1:6379/2"  # no REDIS_URL setting needed
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": CORE, "CONFIG": {"hosts": [("h", 6380)]}}}
    assert redis_url() == "redis://h:6380"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": CORE, "CONFIG": {"hosts": [{"address": "redis://a:1/0"}]}}
    }
    assert redis_url() == "redis://a:1/0"
    settings.REDIS_URL = "redis://top:6379/0"
    assert redis_url() == "redis://top:6379/0"
    settings.BEACON = {"REDIS_URL": "redis://beacon:6379/3"}
    assert redis_url() == "redis://beacon:6379/3"
    store = make_store()  # connects lazily: nothing is sent to that Redis here
    assert isinstance(store, RedisPresenceStore) and store.url == "redis://beacon:6379/3"
    settings.BEACON = {"REDIS_URL": ""}
    assert redis_url() == ""


def test_an_unknown_beacon_key_is_error_e001(settings: Any) -> None:
    settings.BEACON = {"MAX_FRAME_BYTE": 1}
    assert "MAX_FRAME_BYTE" in beacon_ids()["beacon.E001"]
