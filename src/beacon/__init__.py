"""Beacon: real-time notifications and chat for Django, with nothing lost.

The public API is what ``__all__`` lists; everything else may change.

Layout — the folder tree is the architecture, each layer importing only the layers
below it (the contract in ``pyproject.toml``, checked by ``make lint``):

* Django glue, where Django looks for it — ``apps`` (registers the ``user`` stream
  policy and the checks), ``admin``, ``urls``, ``routing`` (the ASGI WebSocket app),
  ``tasks`` (Celery), ``management/`` (``beacon_notify``, ``beacon_prune``), and
  ``chat/``, the chat app built on everything below;
* front doors — ``doors/websocket`` (``BeaconConsumer`` for ``ws/``,
  ``NotificationConsumer`` for ``ws/notifications/``: a socket's lifecycle and its
  frames), ``views`` (HTTP JSON), ``middleware`` (origin check, session auth),
  ``checks`` (system checks), ``pusher/`` (the Pusher protocol door, a hub sink
  through an outbox like ``doors/websocket``); an SSE door is to come as a sibling;
* services of a server process — ``notifications`` (``notify``, unread counts, read
  state, the ``user`` policy), ``presence`` (who is on a stream), ``shutdown``
  (SIGTERM: 4012 and drain);
* publishing — ``publishing`` (``publish``, ephemeral events, delivery on commit);
* fan-out inside a server process — ``fanout/relay`` (committed events to every
  process: local dispatch or channel layer; keeps the hubs), ``fanout/hub`` (one per
  event loop: group joins, dispatch, log watcher, heartbeat), ``fanout/outbox`` (one
  per connection: eager send, bounded backlog, writer task, 4013), ``fanout/eager``,
  ``fanout/loops`` (one object per event loop);
* storage — ``eventlog`` (the numbered log: append, read, prune), ``models``,
  ``migrations/``; beside it ``conf`` (settings), ``metrics`` (Prometheus),
  ``jsonlog`` (JSON log lines);
* the pure core, no Django, no asyncio — ``streams`` (stream names, ``StreamPolicy``,
  the registry), ``protocol`` (client frames in, server frames out, codes),
  ``sequencing`` (the per-subscription seq check, the resume point), ``ratelimit``
  (token buckets), ``exceptions``.

``static/beacon/beacon.js`` is the browser client.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BeaconError",
    "Forbidden",
    "ProtocolError",
    "PublishError",
    "StreamError",
    "StreamPolicy",
    "anotify",
    "anotify_many",
    "apublish",
    "apublish_ephemeral",
    "arevoke",
    "mark_read",
    "notify",
    "notify_many",
    "publish",
    "publish_ephemeral",
    "register",
    "revoke",
    "send_notification",
    "unread_count",
    "user_stream",
]

_LAZY = {
    "anotify": "notifications",
    "anotify_many": "notifications",
    "apublish": "publishing",
    "apublish_ephemeral": "publishing",
    "notify": "notifications",
    "notify_many": "notifications",
    "publish": "publishing",
    "publish_ephemeral": "publishing",
    "send_notification": "notifications",
    "mark_read": "notifications",
    "revoke": "identity.control",
    "arevoke": "identity.control",
    "unread_count": "notifications",
    # The extension API the docs teach (docs/howto-streams.md, docs/api.md).
    "StreamPolicy": "streams",
    "register": "streams",
    "user_stream": "streams",
    "BeaconError": "exceptions",
    "Forbidden": "exceptions",
    "ProtocolError": "exceptions",
    "PublishError": "exceptions",
    "StreamError": "exceptions",
}


def __getattr__(name: str) -> Any:
    """Import lazily: ``import beacon`` must work before Django's apps are ready."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beacon' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"beacon.{module}"), name)
