"""Webhooks: Pusher's envelope, signed, sent from a thread of their own with retries.

Events (``channel_occupied``, ``channel_vacated``, ``member_added``, ``member_removed``,
``client_event``) are queued by the socket side and never wait for the receiver: a
daemon thread batches what is queued (up to 100 events per request, per app) and POSTs
it to the app's ``webhook_url``, retrying a failed request (a connection error or a
status other than 2xx) after 1, 2, 4 … 60 s, up to ``MAX_ATTEMPTS``. They live in
process memory: a process that dies loses what it had not sent yet.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from .apps import App
from .signing import webhook_body, webhook_headers

log = logging.getLogger("beacon.pusher.webhooks")

MAX_BATCH = 100
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5.0


def queue_event(app: App, name: str, channel: str, **fields: Any) -> None:
    """Queue one webhook event of ``app`` (if it has a URL and wants this kind)."""
    if not app.webhook_url or name not in app.webhook_events:
        return
    _sender().put(app, {"name": name, "channel": channel, **fields})


class _Sender:
    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[App, dict[str, Any]]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="beacon-pusher-webhooks", daemon=True)
        self.thread.start()

    def put(self, app: App, event: dict[str, Any]) -> None:
        self.queue.put((app, event))

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            batches: dict[str, tuple[App, list[dict[str, Any]]]] = {}
            items = [first]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for app, event in items:
                batches.setdefault(app.id, (app, []))[1].append(event)
            for app, events in batches.values():
                self._deliver(app, events)

    def _deliver(self, app: App, events: list[dict[str, Any]]) -> None:
        delay = 1.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # Stamped per attempt: receivers (pusher's validate_webhook) refuse old ones.
            body = webhook_body(events, int(time.time() * 1000))
            if send(app, body):
                return
            if attempt < MAX_ATTEMPTS:
                time.sleep(delay)
                delay = min(delay * 2, 60.0)
        log.error("beacon: gave up on %d webhook event(s) for app %s", len(events), app.id)


def send(app: App, body: bytes) -> bool:
    """POST one signed webhook body; True on a 2xx answer."""
    assert app.webhook_url is not None
    request = urllib.request.Request(
        app.webhook_url,
        data=body,
        headers=webhook_headers(app.key, app.secret, body),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("beacon: webhook to %s failed (%s); retrying", app.webhook_url, exc)
        return False


_lock = threading.Lock()
_the_sender: _Sender | None = None


def _sender() -> _Sender:
    global _the_sender
    with _lock:
        if _the_sender is None or not _the_sender.thread.is_alive():
            _the_sender = _Sender()
        return _the_sender
