"""A minimal reader of ``text/event-stream`` for tests (in process and over HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
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


class HttpStream:
    """One plain HTTP/1.1 GET over asyncio, its body read as it arrives (chunked or not)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.parser = Parser()

    @classmethod
    async def open(
        cls,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        ssl: Any = None,
    ) -> HttpStream:
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        stream = cls(reader, writer)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status = await reader.readline()
        if not status:
            raise ConnectionResetError("no response")
        stream.status = int(status.split()[1])
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            stream.headers[name.strip().lower()] = value.strip()
        return stream

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they come; ends with the body (or the connection)."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await self.reader.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    return
                data = await self.reader.readexactly(size)
                await self.reader.readexactly(2)
                yield data
        elif "content-length" in self.headers:
            yield await self.reader.readexactly(int(self.headers["content-length"]))
        else:
            while data := await self.reader.read(65536):
                yield data

    async def events(self) -> AsyncIterator[Event]:
        async for chunk in self.chunks():
            for event in self.parser.feed(chunk):
                yield event

    async def body(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
