"""Triggering Pusher events from Django code, as the HTTP API does but without HTTP::

    from beacon.pusher.server import trigger

    trigger("private-orders.7", "shipped", {"id": 7}, socket_id=request.headers.get("X-Socket-Id"))

``socket_id`` is what Laravel Echo's ``toOthers()`` relies on: Echo sends its socket id in
``X-Socket-Id``, and that socket does not get the event. The event is stored in
Beacon's log in the caller's transaction and delivered after commit.
"""

from __future__ import annotations

import json
from typing import Any

from .signing import ApiError


def trigger(
    channels: str | list[str],
    event: str,
    data: Any,
    *,
    socket_id: str | None = None,
    app_key: str | None = None,
) -> None:
    """Store and send ``event`` on ``channels``; ``ValueError`` for what the API refuses."""
    from . import core
    from .views import _event, _publish_all

    apps = core.get_apps()
    app = apps.by_key.get(app_key) if app_key else next(iter(apps.by_key.values()), None)
    if app is None:
        raise ValueError("no such Pusher app")
    names = [channels] if isinstance(channels, str) else list(channels)
    raw = {
        "name": event,
        "data": data if isinstance(data, str) else json.dumps(data, separators=(",", ":")),
        "socket_id": socket_id or None,
    }
    try:
        _publish_all(_event(app, raw, names))
    except ApiError as exc:
        raise ValueError(exc.message) from None
