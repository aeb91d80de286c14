"""Prometheus metrics, when ``prometheus-client`` is installed; no-ops otherwise.

With several server processes, set ``PROMETHEUS_MULTIPROC_DIR`` (see
``docs/deployment.md``) so ``/metrics`` adds up every process.
"""

from __future__ import annotations

from typing import Any

try:
    import prometheus_client as prom
except ImportError:  # pragma: no cover - metrics are optional
    prom = None


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
            "From commit to the frame leaving the hub",
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


def fanout_latency(seconds: float) -> None:
    if _m:
        _m["fanout"].observe(seconds)
