"""A load-generator process: many WebSocket clients that record what arrives.

The harness runs several of these (``clients.py``), each pinned with the harness to
the core the server does not use, and talks to each over a ``multiprocessing`` pipe:
``(command, args)`` in, one reply out. Sockets record, per message id, the latency
from the send time in the data to arrival; a Beacon socket also checks that each
stream's seqs arrive as ``last + 1`` (the seq of ``subscribed`` starts the count).

Commands: ``connect``, ``subscribe``, ``storm``, ``collect``, ``reset``, ``drop``, ``close``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .stats import Plan, Tally, tally


@dataclass(frozen=True, slots=True)
class SocketSpec:
    """One client socket: its global index, its user's index and pk, and its credential:
    a session cookie, a one-time ticket (``?ticket=``) or a bearer token; ``origin``
    False sends no ``Origin`` header (a non-browser client)."""

    index: int
    user_index: int
    user_pk: int = 0
    cookie: str = ""
    ticket: str = ""
    token: str = ""
    origin: bool = True


def handshake_request(url: str, spec: SocketSpec) -> tuple[str, dict[str, str] | None]:
    """The URL (``{u}``: the user index; the ticket in the query) and headers of a
    socket's handshake."""
    from urllib.parse import quote

    target = url.replace("{u}", str(spec.user_index))
    if spec.ticket:
        target += ("&" if "?" in target else "?") + "ticket=" + quote(spec.ticket, safe="")
    headers = {}
    if spec.cookie:
        headers["Cookie"] = f"sessionid={spec.cookie}"
    if spec.token:
        headers["Authorization"] = f"Bearer {spec.token}"
    return target, headers or None


@dataclass(eq=False)
class Socket:
    spec: SocketSpec
    ws: Any = None
    got: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    seq_errors: int = 0
    seqs: dict[str, int] = field(default_factory=dict)
    epochs: dict[str, str] = field(default_factory=dict)
    #: Resuming after a reconnect: ``subscribed`` does not reset the seq count.
    resuming: bool = False
    subscribed: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    def __init__(self) -> None:
        self.sockets: list[Socket] = []
        self.last_arrival = 0.0
        self.tasks: set[asyncio.Task[None]] = set()

    # -- connecting ---------------------------------------------------------------------

    async def connect(
        self, url: str, origin: str, specs: list[SocketSpec], concurrency: int, welcome: bool
    ) -> dict[str, Any]:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []
        ok = 0

        async def one(spec: SocketSpec) -> None:
            nonlocal ok
            async with gate:
                sock = Socket(spec)
                target, headers = handshake_request(url, spec)
                try:
                    sock.ws = await connect(
                        target,
                        origin=origin if spec.origin else None,  # type: ignore[arg-type]
                        additional_headers=headers,
                        compression=None,
                        ping_interval=None,
                        open_timeout=60,
                        close_timeout=2,
                        max_queue=None,
                    )
                    task = asyncio.get_running_loop().create_task(self.read(sock))
                    self.tasks.add(task)
                    if welcome:
                        await asyncio.wait_for(sock.welcomed.wait(), 60)
                    self.sockets.append(sock)
                    ok += 1
                except Exception as exc:
                    if len(errors) < 5:
                        errors.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(s) for s in specs))
        return {"ok": ok, "failed": len(specs) - ok, "errors": errors}

    async def subscribe(self, streams: list[str], user_stream: bool) -> dict[str, Any]:
        """Subscribe every socket (Beacon's ``op: subscribe``) and await ``subscribed``."""
        failed = 0

        async def one(sock: Socket) -> None:
            nonlocal failed
            names = ([f"user:{sock.spec.user_pk}"] if user_stream else []) + streams
            for n, name in enumerate(names):
                await sock.ws.send(json.dumps({"op": "subscribe", "stream": name, "id": n}))
            for _ in names:
                frame = await asyncio.wait_for(sock.subscribed.get(), 60)
                if frame.get("type") != "subscribed":
                    failed += 1

        gate = asyncio.Semaphore(200)

        async def gated(sock: Socket) -> None:
            async with gate:
                await one(sock)

        await asyncio.gather(*(gated(s) for s in self.sockets))
        return {"ok": len(self.sockets) - failed, "failed": failed}

    async def storm(
        self, url: str, origin: str, resume: bool, jitter: float, timeout: float
    ) -> dict[str, Any]:
        """Every socket waits for its server to go, then reconnects and resumes at once.

        A client's first try comes after a random ``0..jitter`` s; a refused one backs
        off (0.1 s doubling to 2 s, jittered). Beacon sockets resubscribe to what they
        had with ``epoch`` and ``since`` (their last seq) and count as live at their
        last ``subscribed``. Returns counts and the wall-clock time the last one was live.
        """
        from websockets.asyncio.client import connect

        errors: list[str] = []
        ok = 0
        last_live = 0.0
        deadline = time.monotonic() + timeout

        async def one(sock: Socket) -> None:
            nonlocal ok, last_live
            await sock.gone.wait()
            await asyncio.sleep(random.uniform(0, jitter))
            # (A ticket is single use: storms reconnect sockets that came with a cookie.)
            target, headers = handshake_request(url, sock.spec)
            backoff = 0.1
            while True:
                try:
                    sock.ws = await connect(
                        target,
                        origin=origin,  # type: ignore[arg-type]
                        additional_headers=headers,
                        compression=None,
                        ping_interval=None,
                        open_timeout=60,
                        close_timeout=2,
                        max_queue=None,
                    )
                    break
                except Exception as exc:
                    if time.monotonic() > deadline:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        return
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                    backoff = min(2.0, backoff * 2)
            sock.closed, sock.resuming = False, True
            sock.welcomed, sock.gone = asyncio.Event(), asyncio.Event()
            sock.subscribed = asyncio.Queue()
            task = asyncio.get_running_loop().create_task(self.read(sock))
            self.tasks.add(task)
            try:
                if resume:
                    await asyncio.wait_for(sock.welcomed.wait(), timeout)
                    names = list(sock.seqs)
                    for n, name in enumerate(names):
                        frame = {"op": "subscribe", "stream": name, "id": n}
                        frame.update(since=sock.seqs[name], epoch=sock.epochs.get(name, ""))
                        await sock.ws.send(json.dumps(frame))
                    for _ in names:
                        answer = await asyncio.wait_for(sock.subscribed.get(), timeout)
                        if answer.get("type") != "subscribed":
                            raise RuntimeError(f"resume refused: {answer}")
                last_live = max(last_live, time.time())
                ok += 1
            except Exception as exc:
                if len(errors) < 5:
                    errors.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(s) for s in self.sockets))
        for sock in self.sockets:
            sock.resuming = False
        return {"ok": ok, "failed": len(self.sockets) - ok, "errors": errors[:5],
                "last_live": last_live}

    # -- receiving ----------------------------------------------------------------------

    async def read(self, sock: Socket) -> None:
        loads, now = json.loads, time.time
        try:
            async for text in sock.ws:
                arrived = now()
                frame = loads(text)
                i = frame.get("i")
                if i is None:
                    message = frame.get("message")
                    if isinstance(message, dict):  # the guide's frame
                        frame = message
                        i = frame.get("i")
                kind = frame.get("type")
                if i is not None:
                    self.last_arrival = arrived
                    if i in sock.got:
                        sock.duplicates += 1
                    else:
                        sock.got[i] = arrived - frame["t"]
                    seq = frame.get("seq")
                    if seq is not None:
                        stream = frame["stream"]
                        last = sock.seqs.get(stream)
                        if last is not None and seq != last + 1:
                            sock.seq_errors += 1
                        sock.seqs[stream] = seq
                elif kind == "welcome":
                    sock.welcomed.set()
                elif kind in ("subscribed", "error"):
                    if kind == "subscribed":
                        sock.epochs[frame["stream"]] = frame["epoch"]
                        if not sock.resuming:
                            sock.seqs[frame["stream"]] = frame["seq"]
                    sock.subscribed.put_nowait(frame)
        except Exception:
            pass
        finally:
            sock.closed = True
            sock.welcomed.set()
            sock.gone.set()

    # -- accounting ---------------------------------------------------------------------

    def count(self, plan: Plan) -> tuple[Tally, list[float]]:
        total = Tally(0, 0, 0, 0)
        latencies: list[float] = []
        owed_by_user: dict[int, set[int]] = {}
        for sock in self.sockets:
            if plan.kind == "user" and sock.spec.index >= plan.users:
                continue  # per-user runs address the first ``users`` sockets only
            u = sock.spec.user_index
            owed = owed_by_user.get(u)
            if owed is None:
                owed = owed_by_user[u] = plan.ids_for(u)
            total += tally(owed, sock.got.keys(), sock.duplicates, sock.seq_errors)
            latencies.extend(sock.got[i] for i in owed if i in sock.got)
        return total, latencies

    async def collect(self, plan: Plan, timeout: float) -> dict[str, Any]:
        """Wait (up to ``timeout``) until every socket has what it is owed; count.

        While waiting only sizes are compared (cheap, so the wait does not slow the
        arrivals it waits for); the full count runs once at the end.
        """
        deadline = time.monotonic() + timeout
        owed_len: dict[int, int] = {}
        watched = []
        for sock in self.sockets:
            if plan.kind == "user" and sock.spec.index >= plan.users:
                continue
            u = sock.spec.user_index
            if u not in owed_len:
                owed_len[u] = len(plan.ids_for(u))
            watched.append((sock, owed_len[u]))
        while time.monotonic() < deadline:
            if all(len(sock.got) >= n for sock, n in watched):
                break
            await asyncio.sleep(0.05)
        counted, latencies = self.count(plan)
        return {
            "tally": counted,
            "latencies": latencies,
            "last_arrival": self.last_arrival,
            "closed": sum(s.closed for s in self.sockets),
        }

    def reset(self) -> None:
        for sock in self.sockets:
            sock.got.clear()
            sock.duplicates = sock.seq_errors = 0
        self.last_arrival = 0.0

    async def close(self) -> None:
        await asyncio.gather(
            *(s.ws.close() for s in self.sockets if s.ws is not None), return_exceptions=True
        )

    async def drop(self) -> dict[str, int]:
        """Close every socket and forget them (the process stays, for the next set)."""
        count = len(self.sockets)
        await self.close()
        self.sockets = []
        self.last_arrival = 0.0
        return {"closed": count}


async def serve(conn: Connection) -> None:
    worker = Worker()
    loop = asyncio.get_running_loop()
    while True:
        command, args = await loop.run_in_executor(None, conn.recv)
        try:
            if command == "connect":
                reply: Any = await worker.connect(**args)
            elif command == "subscribe":
                reply = await worker.subscribe(**args)
            elif command == "storm":
                reply = await worker.storm(**args)
            elif command == "collect":
                reply = await worker.collect(**args)
            elif command == "drop":
                reply = await worker.drop()
            elif command == "reset":
                worker.reset()
                reply = None
            elif command == "close":
                await worker.close()
                conn.send(None)
                return
            else:
                reply = RuntimeError(f"unknown command {command!r}")
        except Exception as exc:
            reply = exc
        conn.send(reply)


def main(conn: Connection) -> None:
    """Process entry point (``multiprocessing`` target)."""
    from .procstat import raise_nofile

    raise_nofile()
    try:
        import uvloop

        uvloop.run(serve(conn))
    except ImportError:
        asyncio.run(serve(conn))
