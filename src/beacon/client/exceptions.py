"""The Python client's exceptions.

ClientError
 ├── Closed               the connection ended for good; ``code`` and ``reason`` say why
 │    ├── Unauthenticated  close 4001, or the handshake's credential was refused
 │    ├── Forbidden        close 4003, or an HTTP 403 handshake (e.g. origin refused)
 │    └── ClientClosed     ``Client.close()`` was called
 ├── Refused              the server answered a request with an ``error`` frame
 │                         (``code`` from docs/protocol.md), or ended a subscription
 └── RequestTimeout       no answer within the request's timeout

A ``Closed`` ends every subscription and request of the client; a ``Refused`` ends only
the request or subscription it answers.
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Root of the client's exceptions."""


class Closed(ClientError):
    """The client stopped and will not reconnect by itself."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{reason} (close code {code})" if code is not None else reason)
        self.code = code
        self.reason = reason


class Unauthenticated(Closed):
    """Not signed in: the credential is missing, wrong or expired (close code 4001)."""


class Forbidden(Closed):
    """The server refuses this client (close code 4003, or an HTTP 403 handshake)."""


class ClientClosed(Closed):
    """The application closed the client."""

    def __init__(self) -> None:
        super().__init__(None, "the client was closed")


class Refused(ClientError):
    """An ``error`` frame answered a request or ended a subscription."""

    def __init__(
        self, code: str, message: str, *, stream: str | None = None, frame: Any = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.stream = stream
        self.frame = frame


class RequestTimeout(ClientError, TimeoutError):
    """A request got no answer in time (it may still have been carried out)."""
