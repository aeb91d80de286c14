"""Settings: ``BEACON`` merged over ``DEFAULTS``, read lazily, cached, cleared on change."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from beacon.conf import DEFAULTS, get_config, settings_dict


def test_without_a_beacon_setting_the_defaults_apply() -> None:
    with override_settings(BEACON={}):
        assert get_config() == DEFAULTS


def test_the_beacon_setting_overrides_only_the_keys_it_names() -> None:
    with override_settings(BEACON={"HEARTBEAT_SECONDS": 3.0}):
        config = get_config()
    assert config["HEARTBEAT_SECONDS"] == 3.0
    assert config["MAX_FRAME_BYTES"] == DEFAULTS["MAX_FRAME_BYTES"]


def test_the_cache_is_cleared_when_a_test_changes_the_setting() -> None:
    with override_settings(BEACON={"SOCKET_QUEUE_SIZE": 7}):
        assert get_config()["SOCKET_QUEUE_SIZE"] == 7
    assert get_config()["SOCKET_QUEUE_SIZE"] != 7


def test_the_config_is_read_once_then_cached() -> None:
    with override_settings(BEACON={}):
        assert get_config() is get_config()


def test_an_unknown_key_is_an_error_not_ignored() -> None:
    with override_settings(BEACON={"HEARTBEAT_SECOND": 3}), pytest.raises(
        ImproperlyConfigured, match="HEARTBEAT_SECOND"
    ):
        get_config()


def test_settings_dict_reads_any_named_setting_over_its_defaults() -> None:
    read = settings_dict("BEACON_TEST_EXTRA", {"A": 1, "B": 2})
    with override_settings(BEACON_TEST_EXTRA={"B": 3}):
        assert read() == {"A": 1, "B": 3}
    with override_settings(BEACON_TEST_EXTRA={}):
        assert read() == {"A": 1, "B": 2}
