"""Graceful shutdown: on SIGTERM, stop accepting, send clients elsewhere, then exit.

What the servers do on their own, and why that is not enough:

* **Daphne** runs on Twisted, which installs its own SIGTERM handler when the reactor
  starts: ``reactor.stop()``, whose "before shutdown" trigger (Daphne's
  ``kill_all_applications``) cancels every application instance. Sockets die without
  a close frame (clients see 1006), all at once, and the port stays open until the
  reactor is gone, so a reconnecting client can land on the dying process again.
* **Uvicorn** handles SIGTERM itself too (``Server.handle_exit``): it closes its
  listening sockets, closes every WebSocket with 1012 from the server side (the app
  gets ``websocket.disconnect``, it cannot choose the code), waits for tasks
  (``--timeout-graceful-shutdown``), and only then sends the ASGI ``lifespan``
  shutdown event, when no socket is left to tell anything.

So Beacon wraps the server's SIGTERM handler. :func:`install` runs on the first
WebSocket connection, on the main thread inside the running loop, after the server
installed its handler. On SIGTERM:

1. **stop accepting**: close the server's listening sockets (Twisted: the reactor's
   ``Port`` readers; Uvicorn: ``Server.servers``), so Nginx's connect fails and it
   tries the next process;
2. **drain**: mark the process draining (a handshake that still arrives is closed
   with 4012 right after accept) and close every local connection of the hub with
   4012 ``SERVER_RESTART``; clients reconnect with jittered backoff and resume from
   their last seq on another process;
3. wait until the connections are gone, at most ``SHUTDOWN_GRACE_SECONDS``;
4. **hand over** to the server's own handler, which exits as it always does.

A second SIGTERM during the drain hands over at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Any

from .conf import get_config
from .protocol import CloseCode

log = logging.getLogger("beacon.shutdown")

_installed = False
_draining = False
_previous: Any = signal.SIG_DFL
_loop: asyncio.AbstractEventLoop | None = None


def draining() -> bool:
    """True once SIGTERM arrived: new sockets are sent away with 4012."""
    return _draining


def install() -> bool:
    """Wrap the server's SIGTERM handler (once). Call from the main thread's running loop.

    Returns whether the hook is in place. It wraps a server's handler only: where
    SIGTERM has none (a test process, a thread, no running loop) it does nothing.
    """
    global _installed, _previous, _loop
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return False
    _previous = previous
    _loop = loop
    signal.signal(signal.SIGTERM, _on_sigterm)
    _installed = True
    return True


def _on_sigterm(signum: int, frame: Any) -> None:
    global _draining
    if _draining or _loop is None or _loop.is_closed():
        _hand_over(signum)
        return
    _draining = True
    loop = _loop
    loop.call_soon_threadsafe(lambda: loop.create_task(drain(signum)))


async def drain(signum: int | None = None) -> None:
    """Stop accepting, close every connection with 4012, wait, then let the server exit."""
    from . import metrics
    from .fanout import hub

    global _draining
    _draining = True
    loop = asyncio.get_running_loop()
    grace = float(get_config()["SHUTDOWN_GRACE_SECONDS"])
    stopped = stop_accepting(_previous)
    local = [h for h in hub.hubs() if h.loop is loop]
    log.info(
        "beacon: SIGTERM: closed %d listener(s), closing %d connection(s), grace %.1f s",
        stopped,
        sum(len(h.connections) for h in local),
        grace,
    )
    deadline = loop.time() + grace
    # Each pass also closes sockets whose handshake was under way at the first one.
    # The hub learns of each close from the server's disconnect event: nothing to await.
    while any(h.connections for h in local) and loop.time() < deadline:
        await _close_all([c for h in local for c in tuple(h.connections)])
        await asyncio.sleep(0.05)
    left = sum(len(h.connections) for h in local)
    log.info("beacon: drained; %d connection(s) left, handing over to the server", left)
    metrics.process_exiting()
    if signum is not None:
        _hand_over(signum)


async def _close_all(connections: list[Any]) -> None:
    """Close each connection with 4012 (an outbox closes its connection once)."""
    results = await asyncio.gather(
        *(c.close(CloseCode.SERVER_RESTART) for c in connections), return_exceptions=True
    )
    for result in results:
        if isinstance(result, Exception):
            log.warning("beacon: closing a connection failed: %s", result)


def stop_accepting(handler: Any) -> int:
    """Close the server's listening sockets; returns how many were closed.

    Uvicorn's handler is the bound ``Server.handle_exit``, whose ``servers`` are asyncio
    servers; Daphne listens through Twisted's reactor, whose listening ports are
    readers of type ``twisted.internet.tcp.Port``.
    """
    servers = getattr(getattr(handler, "__self__", None), "servers", None)
    if isinstance(servers, list) and servers:
        for server in servers:
            server.close()
        return len(servers)
    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor, tcp

        readers = reactor.getReaders()  # type: ignore[misc]  # twisted types the reactor as a module
        ports = [r for r in readers if isinstance(r, tcp.Port)]
        for port in ports:
            port.stopListening()
        return len(ports)
    return 0


def _hand_over(signum: int) -> None:
    """Run the server's own SIGTERM handling (or the default action)."""
    previous = _previous
    if callable(previous):
        previous(signum, None)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
