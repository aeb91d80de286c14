"""A minimal reader of ``text/event-stream`` for tests (in process and over HTTP)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comment: bool = False

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Parser:
    """Splits a byte stream into events as ``EventSource`` does (LF line ends only)."""

    buffer: str = ""
    last_id: str | None = None
    pending: bytes = field(default=b"")

    def feed(self, chunk: bytes) -> list[Event]:
        data = self.pending + chunk
        try:
            text = data.decode()
            self.pending = b""
        except UnicodeDecodeError:  # a character cut in two: keep its start for later
            cut = len(data) - 1
            while cut > 0:
                try:
                    text = data[:cut].decode()
                    break
                except UnicodeDecodeError:
                    cut -= 1
            self.pending = data[cut:]
        self.buffer += text
        events = []
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            events.append(self._parse(block))
        return events

    def _parse(self, block: str) -> Event:
        event = Event()
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                event.comment = True
            elif name == "event":
                event.event = value
            elif name == "data":
                event.data = value if not event.data else event.data + "\n" + value
            elif name == "id":
                event.id = value
                self.last_id = value
            elif name == "retry":
                event.retry = int(value)
        return event
