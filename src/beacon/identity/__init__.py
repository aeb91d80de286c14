"""Identity for a connection's whole life: who it is, until when, and ending it.

* :func:`~beacon.identity.core.identify` — a :class:`Handshake` (headers, query,
  cookies: what any front door receives) to an :class:`Identity` (user, session,
  expiry, how it was recognized), through ``BEACON["AUTHENTICATORS"]``;
* :func:`end_sessions`, :func:`revoke` — close the connections of a session or user,
  or re-ask a stream's policy for its subscribers, in every server process
  (``beacon.identity.control``);
* :func:`~beacon.identity.control.get_registry` — a front door registers each live
  connection there (``admit``/``remove``) and gets the per-user limits with it.

Names are imported lazily: ``BEACON["AUTHENTICATORS"]`` may name
``beacon.identity.SessionAuthenticator`` before Django's apps are ready.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Authenticator": "core",
    "Handshake": "core",
    "Identity": "core",
    "Refused": "core",
    "identify": "core",
    "SessionAuthenticator": "authenticators",
    "TicketAuthenticator": "authenticators",
    "BearerTokenAuthenticator": "authenticators",
    "aend_sessions": "control",
    "arevoke": "control",
    "end_sessions": "control",
    "get_registry": "control",
    "recheck_users": "control",
    "revoke": "control",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beacon.identity' has no attribute {name!r}")
    return getattr(import_module(f"beacon.identity.{module}"), name)
