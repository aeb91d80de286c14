"""What the ASGI server still holds for one socket, and a close that does not queue.

ASGI gives an application no way to know how much of what it sent has reached the
client. Daphne's ``send`` never waits: Twisted buffers whatever it is given, so a
client that stops reading grows the process by everything sent to it. Uvicorn's
``send`` waits while its transport is over the high-water mark, and so does its
``websocket.close``: the close of a stuck socket waits behind the stuck send, and
the client ends up with the keepalive's 1011 much later.

Both servers expose their transport on the ``send`` callable they give the
application, so :func:`wire_for` can read, for the servers it knows:

* :meth:`Wire.owed` — the bytes the server holds for the socket: its transport's
  write buffer plus what the kernel has not had acknowledged yet (``SIOCOUTQ``);
* :meth:`Wire.close_now` — a close frame written behind what is queued without
  waiting for the buffer to drain, and the connection aborted if it is still there
  after ``grace`` seconds (a client that never reads would otherwise keep it).

An unknown server (or another version's internals) gets ``None``: the outbox then
bounds the socket by its own backlog only (``SOCKET_QUEUE_SIZE``).
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import functools
import logging
import termios
from typing import Any

log = logging.getLogger("beacon.consumers")

#: Seconds a closed socket's connection may live on before it is aborted.
CLOSE_GRACE_SECONDS = 10.0


def _unacked(fileno: int) -> int:
    """Bytes in the kernel's send queue (not yet acknowledged by the peer)."""
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(fileno, termios.TIOCOUTQ, buf, True)  # SIOCOUTQ on sockets
    except OSError:
        return 0
    return buf[0]


class Wire:
    """One socket's transport, as far as Beacon needs to see it."""

    def owed(self) -> int:
        raise NotImplementedError

    def close_now(self, code: int) -> None:
        raise NotImplementedError


class UvicornWire(Wire):
    """Uvicorn's ``websockets-sansio`` protocol (its default with websockets installed)."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        sock = protocol.transport.get_extra_info("socket")
        self.fileno = sock.fileno() if sock is not None else -1

    def owed(self) -> int:
        transport = self.protocol.transport
        held = int(transport.get_write_buffer_size())
        return held + (_unacked(self.fileno) if self.fileno >= 0 else 0)

    def close_now(self, code: int) -> None:
        """What uvicorn does for ``websocket.close``, less its wait for ``writable``."""
        p = self.protocol
        if p.close_sent or p.disconnected or p.transport.is_closing():
            return
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": ""})
        p.conn.send_close(code, "")
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, p.transport.abort)


class DaphneWire(Wire):
    """Daphne's protocol (autobahn on Twisted): its close never waits, and autobahn
    drops the connection when the client has not answered it in time."""

    def __init__(self, protocol: Any, close: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.close = close

    def owed(self) -> int:
        t = self.transport
        if t is None or getattr(t, "disconnected", True):
            return 0
        held = len(t.dataBuffer) - t.offset + t._tempDataLen
        return held + _unacked(t.fileno())

    def close_now(self, code: int) -> None:
        self.protocol.closeHandshakeTimeout = CLOSE_GRACE_SECONDS  # autobahn's: 1 s
        self.close(code)


def wire_for(send: Any) -> Wire | None:
    """The :class:`Wire` behind an ASGI ``send``, if the server is one Beacon knows."""
    try:
        owner = getattr(send, "__self__", None)
        if type(owner).__name__ == "WebSocketsSansIOProtocol" and hasattr(owner, "writable"):
            return UvicornWire(owner)
        if isinstance(send, functools.partial) and send.args:
            protocol = send.args[0]
            transport = getattr(protocol, "transport", None)
            if hasattr(protocol, "sendClose") and hasattr(transport, "dataBuffer"):
                return DaphneWire(protocol, lambda code: protocol.sendClose(code=code))
    except Exception:  # another version's internals: fall back to the frame bound
        log.warning("beacon: cannot read this server's transport state", exc_info=True)
    return None
