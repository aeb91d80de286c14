"""Prometheus metrics, when ``prometheus-client`` is installed; no-ops otherwise.

Every server process counts for itself. With several processes, set
``PROMETHEUS_MULTIPROC_DIR`` to a folder they share (the systemd units do, see
``docs/deployment.md``) before they start: each process then writes its figures to
files there, and :func:`metrics_view` (``/metrics``) adds them all up, so any
process answers for the whole host. The open-connections gauge is a live sum: a
process removes its own figures when it drains (``beacon.shutdown``), and
``/metrics`` drops those of processes that died without draining.

=========================================  ==================================================
metric                                     what
=========================================  ==================================================
``beacon_open_connections``                open, authenticated WebSockets
``beacon_deliveries_total``                live event frames sent to sockets
``beacon_resumes_total{recovered}``        subscriptions resumed from a seq, and whether the
                                           server could bring the client fully up to date
``beacon_gap_fills_total``                 gaps (a lost layer message) filled from the log
``beacon_rejected_handshakes_total``       handshakes refused, by ``reason``: ``origin``,
                                           ``unauthenticated``, ``draining``
``beacon_errors_total{code}``              error frames and error closes, by code
``beacon_fanout_latency_seconds``          from an event's ``ts`` (stamped when it is
                                           published, just before commit) to the hub that
                                           hands it to its sockets, once per process
=========================================  ==================================================
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

try:
    import prometheus_client as prom
except ImportError:  # pragma: no cover - metrics are optional
    prom = None  # type: ignore[assignment]


def _make() -> dict[str, Any]:
    if prom is None:
        return {}
    return {
        "connections": prom.Gauge(
            "beacon_open_connections", "Open WebSocket connections", multiprocess_mode="livesum"
        ),
        "deliveries": prom.Counter("beacon_deliveries", "Live event frames sent to sockets"),
        "resumes": prom.Counter(
            "beacon_resumes", "Subscriptions resumed from a seq", ["recovered"]
        ),
        "gap_fills": prom.Counter("beacon_gap_fills", "Gaps filled from the event log"),
        "rejected": prom.Counter("beacon_rejected_handshakes", "Handshakes refused", ["reason"]),
        "errors": prom.Counter("beacon_errors", "Error frames and error closes", ["code"]),
        "fanout": prom.Histogram(
            "beacon_fanout_latency_seconds",
            "From publish (just before commit) to the frame reaching the hub",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        ),
    }


_m = _make()


def connection_opened() -> None:
    if _m:
        _m["connections"].inc()


def connection_closed() -> None:
    if _m:
        _m["connections"].dec()


def delivered() -> None:
    if _m:
        _m["deliveries"].inc()


def resume(recovered: bool) -> None:
    if _m:
        _m["resumes"].labels(recovered=str(recovered).lower()).inc()


def gap_fill() -> None:
    if _m:
        _m["gap_fills"].inc()


def rejected_handshake(reason: str) -> None:
    if _m:
        _m["rejected"].labels(reason=reason).inc()


def error(code: str) -> None:
    if _m:
        _m["errors"].labels(code=code).inc()


_TS = re.compile(r'"ts":\s*(-?[0-9]+(?:\.[0-9]+)?)')


def frame_ts(frame: str) -> float | None:
    """The ``ts`` of an event frame, read without parsing the whole JSON text.

    Beacon builds frames with ``ts`` before the event's data (``protocol.event_frame``),
    so the first ``"ts":`` is the envelope's, whatever the data holds.
    """
    match = _TS.search(frame)
    return float(match[1]) if match else None


def reached_hub(frame: str) -> None:
    """Observe the fan-out latency of a durable event the hub is about to hand out."""
    if _m:
        ts = frame_ts(frame)
        if ts is not None:
            _m["fanout"].observe(max(0.0, time.time() - ts))


# -- several processes -------------------------------------------------------------------

_PID_FILE = re.compile(r"_(\d+)\.db$")


def _multiproc_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_exiting(pid: int | None = None) -> None:
    """Drop a process's live gauges from the shared folder (it is about to exit)."""
    path = _multiproc_dir()
    if prom is None or path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid or os.getpid(), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def forget_dead_processes(path: str) -> list[int]:
    """Drop the live gauges of processes that died without draining; returns their pids."""
    from prometheus_client import multiprocess

    dead = set()
    for name in os.listdir(path):
        match = _PID_FILE.search(name)
        if name.startswith("gauge_live") and match and not _alive(int(match[1])):
            dead.add(int(match[1]))
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)
    return sorted(dead)


def metrics_view(request: Any) -> Any:
    """``/metrics`` in Prometheus's text format: every process's figures, added up.

    Keep it internal (the Nginx config allows 127.0.0.1 only).
    """
    from django.http import HttpResponse

    if prom is None:
        return HttpResponse("prometheus-client is not installed\n", status=501)
    path = _multiproc_dir()
    if path is None:
        registry = prom.REGISTRY
    else:
        from prometheus_client import multiprocess

        forget_dead_processes(path)
        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
    return HttpResponse(prom.generate_latest(registry), content_type=prom.CONTENT_TYPE_LATEST)
