"""Beacon's exceptions.

BeaconError
 ├── ProtocolError        a client frame Beacon cannot act on; carries an error ``code``
 │    └── Forbidden       the user may not do that to that stream
 ├── StreamError          a malformed stream name or an unknown stream namespace
 └── PublishError         an event that cannot be published (reserved type, bad data)

The consumer catches ``ProtocolError`` in one place and answers with an ``error``
frame (see ``docs/protocol.md``); everything else is a bug in the caller's code.
"""

from __future__ import annotations


class BeaconError(Exception):
    """Root of Beacon's exceptions."""


class ProtocolError(BeaconError):
    """A client frame that Beacon refuses; ``code`` is the error frame's code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        ref: int | str | None = None,
        stream: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.stream = stream


class Forbidden(ProtocolError):
    """The user is not allowed this action on this stream."""

    def __init__(self, stream: str, action: str, *, ref: int | str | None = None) -> None:
        super().__init__("forbidden", f"not allowed to {action} {stream}", ref=ref, stream=stream)


class StreamError(BeaconError, ValueError):
    """A malformed stream name, or one whose namespace has no policy."""


class PublishError(BeaconError, ValueError):
    """An event Beacon will not publish."""
