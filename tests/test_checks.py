"""System checks: stable IDs (``docs/checks.md``) for the settings mistakes they catch."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Warning
from django.test import override_settings

from beacon.checks import check_settings

PUBSUB = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}


def ids(messages: list) -> list[str]:
    return [m.id for m in messages]


@override_settings(CHANNEL_LAYERS=PUBSUB)
def test_the_demo_settings_pass() -> None:
    assert check_settings(None) == []


@override_settings(CHANNEL_LAYERS=PUBSUB)
def test_an_unknown_beacon_key_is_error_e001() -> None:
    with override_settings(BEACON={"MAX_FRAME_BYTE": 1}):
        messages = check_settings(None)
    assert ids(messages) == ["beacon.E001"]
    assert isinstance(messages[0], Error) and "MAX_FRAME_BYTE" in messages[0].msg


@override_settings(CHANNEL_LAYERS=PUBSUB)
def test_without_channels_or_daphne_installed_it_warns_w001(settings: Any) -> None:
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app not in ("channels", "daphne")
    ]
    messages = check_settings(None)
    assert ids(messages) == ["beacon.W001"]
    assert isinstance(messages[0], Warning)


def test_channels_redis_core_layer_warns_w002_and_the_pubsub_layer_does_not() -> None:
    core = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=core):
        assert ids(check_settings(None)) == ["beacon.W002"]
    with override_settings(CHANNEL_LAYERS=PUBSUB):
        assert check_settings(None) == []


def test_every_check_id_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    for check_id in ("beacon.E001", "beacon.W001", "beacon.W002"):
        assert f"`{check_id}`" in doc
