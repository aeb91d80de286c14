"""``python -m beacon.client tail URL STREAM…``: print a stream's events as JSON lines.

Each event is printed on stdout as the server sent it, one JSON object per line, so the
output pipes into ``jq``. Notices (reconnects, a subscription that could not recover)
go to stderr. Exit status: 0 when stopped (Ctrl-C, ``--count`` reached), 2 when the
server refused (not signed in, forbidden stream, bad stream name).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from .connection import Client
from .credentials import ticket_fetcher
from .exceptions import ClientError
from .subscription import Subscribed, merge


def websocket_url(url: str) -> str:
    """``http://h:p`` → ``ws://h:p/ws/``: accept the site's address as well as the socket's."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws://, wss://, http:// or https:// URL: {url}")
    path = parts.path if parts.path not in ("", "/") else "/ws/"
    return urlunsplit(parts._replace(scheme=scheme, path=path))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m beacon.client", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    tail = commands.add_parser("tail", help="print the events of streams as JSON lines")
    tail.add_argument("url", help="ws://host:port/ws/ (or the site's http:// address)")
    tail.add_argument("streams", nargs="+", metavar="STREAM", help="e.g. user:7 room:3")
    auth = tail.add_argument_group("credentials (default: $BEACON_TOKEN if set)")
    auth.add_argument("--token", help="a bearer token (Authorization: Bearer)")
    auth.add_argument("--cookie", help='a Cookie header, e.g. "sessionid=…"')
    auth.add_argument(
        "--ticket-url",
        help="POST here for a single-use ticket before each connect "
        "(authenticated by --token or --cookie, which then go to this URL only)",
    )
    tail.add_argument("--origin", help="the Origin header (default: the URL's own host)")
    tail.add_argument("--since", type=int, help="replay after this seq (one stream only)")
    tail.add_argument("--epoch", help="the epoch --since belongs to")
    tail.add_argument("--count", type=int, help="exit after this many events")
    tail.add_argument("-v", "--verbose", action="store_true", help="log reconnects in detail")
    return root


def make_client(args: argparse.Namespace) -> Client:
    url = websocket_url(args.url)
    token = args.token or os.environ.get("BEACON_TOKEN") or None
    if args.ticket_url:
        fetch = ticket_fetcher(args.ticket_url, token=token, cookie=args.cookie, origin=args.origin)
        return Client(url, ticket=fetch, origin=args.origin)
    if token and args.cookie:
        raise ValueError("give --token or --cookie, not both (or --ticket-url with one)")
    return Client(url, token=token, cookie=args.cookie, origin=args.origin)


async def tail(args: argparse.Namespace) -> int:
    if args.since is not None and len(args.streams) != 1:
        raise ValueError("--since needs exactly one stream")
    client = make_client(args)
    printed = 0
    try:
        await client.connect()
        subs = [
            await client.subscribe(stream, epoch=args.epoch, since=args.since)
            for stream in args.streams
        ]
        async for item in merge(*subs):
            if isinstance(item, Subscribed):
                print(
                    f"beacon: {item.stream} not recovered ({item.reason}): "
                    f"events were missed; continuing from seq {item.seq}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            print(item.raw, flush=True)
            printed += 1
            if args.count is not None and printed >= args.count:
                break
    except ClientError as exc:
        print(f"beacon: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        await client.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    loop = asyncio.new_event_loop()
    task = loop.create_task(tail(args))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        return 0
    except ValueError as exc:
        print(f"beacon: {exc}", file=sys.stderr)
        return 2
    finally:
        loop.close()
