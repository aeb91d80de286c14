"""Database calls from the event loop, on a bounded pool of threads rather than one.

Channels' ``database_sync_to_async`` is thread-sensitive: every database call of a
server process runs on one thread, so handshakes, subscribes, replays and the log
watcher of every socket queue behind each other, and one slow query (a policy that
waits on a lock) makes other users' handshakes time out. :func:`database_call` runs
the function on a thread pool of its own instead, as many threads as the database
may have connections (``DATABASE_THREADS``, by default the connection pool's
``max_size``), and closes stale connections before and after each call as Channels
does. Each thread has its own connection (Django's connections are per thread) and
holds it only for the length of a call.

Code run this way must not need to share a thread with other sync code of the same
request (Beacon's database calls are self-contained: one function, its own queries).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django import db
from django.conf import settings
from django.core.signals import setting_changed

from .conf import get_config

P = ParamSpec("P")
R = TypeVar("R")

#: Threads when neither ``DATABASE_THREADS`` nor a connection pool's ``max_size`` is set.
DEFAULT_THREADS = 8

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def thread_count() -> int:
    """``DATABASE_THREADS``, else the default database's pool ``max_size``, else 8."""
    configured = get_config()["DATABASE_THREADS"]
    if configured:
        return int(configured)
    pool = settings.DATABASES.get("default", {}).get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict) and pool.get("max_size"):
        return int(pool["max_size"])
    return DEFAULT_THREADS


def executor() -> ThreadPoolExecutor:
    """The process's database threads (made on first use)."""
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(thread_count(), thread_name_prefix="beacon-db")
    return _executor


class _DatabaseCall(SyncToAsync):
    """Channels' ``DatabaseSyncToAsync``, but immune to its test communicator.

    ``channels.testing`` patches ``channels.db.close_old_connections`` away while a
    communicator waits, so that a test keeps its one connection. On a pool of threads
    that would leave every thread holding a pooled connection after its call, and a
    thread that ends (a new pool after a settings change) would never give its back:
    the pool runs dry. Django's own function is looked up at each call instead.
    """

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        db.close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            db.close_old_connections()


def database_call(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``database_sync_to_async(func)``, run on :func:`executor` (not thread-sensitive)."""
    return _DatabaseCall(func, thread_sensitive=False, executor=executor())


def _reset(*, setting: str, **kwargs: Any) -> None:
    """A test that changes the settings gets a pool of the new size (old one drains)."""
    global _executor
    if setting in ("BEACON", "DATABASES") and _executor is not None:
        with _lock:
            old, _executor = _executor, None
        old.shutdown(wait=False)


setting_changed.connect(_reset, weak=False)
