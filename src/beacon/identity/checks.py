"""System checks of the identity settings (IDs ``beacon.E101``… in ``docs/checks.md``)."""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string


@register()
def check_identity(app_configs: Any, **kwargs: Any) -> list[Any]:
    from ..conf import get_config
    from .core import Authenticator

    try:
        config = get_config()
    except Exception:  # unknown keys: beacon.E001 says so
        return []
    messages: list[Any] = []
    for path in config["AUTHENTICATORS"]:
        try:
            cls = import_string(path)
        except ImportError as exc:
            problem = f"AUTHENTICATORS: cannot import {path!r}: {exc}"
            messages.append(Error(problem, id="beacon.E101"))
            continue
        if not (isinstance(cls, type) and issubclass(cls, Authenticator)):
            messages.append(
                Error(f"AUTHENTICATORS: {path!r} is not an Authenticator", id="beacon.E101")
            )
        elif path.endswith("BearerTokenAuthenticator") and not importlib.util.find_spec("jwt"):
            messages.append(
                Error(
                    "BearerTokenAuthenticator needs PyJWT.",
                    hint="pip install 'django-beacon[jwt]'",
                    id="beacon.E102",
                )
            )
    if not 0 < config["TICKET_SECONDS"] <= 60:
        messages.append(Warning("TICKET_SECONDS should be between 1 and 60.", id="beacon.W101"))
    return messages
