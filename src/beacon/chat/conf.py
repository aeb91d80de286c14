"""Chat settings: ``BEACON_CHAT`` in Django settings, merged over ``DEFAULTS``.

Read lazily and cached, like ``beacon.conf``; the cache is cleared when a test
overrides ``BEACON_CHAT``.
"""

from __future__ import annotations

from typing import Any

from ..conf import settings_dict

DEFAULTS: dict[str, Any] = {
    # Longest message text accepted, in characters; longer ones get ``invalid_message``.
    "MAX_MESSAGE_LENGTH": 4000,
    # At most one ``typing`` event per user and room this often (server side).
    "TYPING_INTERVAL_SECONDS": 2.0,
    # How long clients show "… is typing" after the last ``typing`` event (sent as ``expires``).
    "TYPING_TIMEOUT_SECONDS": 6.0,
    # Most read receipts sent in a room's ``subscribed`` state (the latest readers).
    "MAX_RECEIPTS_IN_STATE": 100,
}


#: ``DEFAULTS`` overridden by ``settings.BEACON_CHAT``.
get_chat_config = settings_dict("BEACON_CHAT", DEFAULTS)
