"""Daphne as Beacon runs it: a frame over the server's limit closes with 1009.

Daphne's WebSocket stack (autobahn) *fails* a connection that breaks a limit
(``--websocket-max-message-size``, ``--websocket-max-frame-size``) or the protocol by
dropping the TCP connection, so the client sees 1006 and cannot tell a refused frame
from a network failure. Autobahn can instead send the close frame the failure calls
for (1009 "message too big", 1002 …) — its ``failByDrop`` option, which Daphne's
command line does not expose. ``python -m beacon.daphne_server`` takes Daphne's own
arguments and sets that one option; everything else is Daphne's (the shipped
``beacon@.service`` runs it).
"""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface as DaphneCommandLine
from daphne.server import Server as DaphneServer


class Server(DaphneServer):
    """Daphne's server whose WebSocket factory closes failed connections with a code."""

    @property
    def ws_factory(self) -> Any:
        return self._beacon_ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        # Set where Daphne makes the factory (``Server.run``); its own options follow
        # and leave this one alone.
        factory.setProtocolOptions(failByDrop=False)
        self._beacon_ws_factory = factory


class CommandLineInterface(DaphneCommandLine):
    server_class = Server


def main() -> None:
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
