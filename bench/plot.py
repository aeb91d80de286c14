"""The PNG: broadcast p99 latency against N, and deliveries/s against offered load."""

from __future__ import annotations

from pathlib import Path

from .scenario import P99_LIMIT, Result, Sizes

#: Line style by kind: Beacon solid, the references dashed, the guide's baseline dotted.
STYLES = {"beacon": "-", "raw": "--", "asgi": "-.", "baseline": ":"}


def draw(results: list[Result], path: Path, sizes: Sizes, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    for r in results:
        f = r.figures
        ns = [n for n in (sizes.n1, sizes.n2) if f"bcast{n}_p99_ms" in f]
        if not ns:
            continue
        style = STYLES[r.config.kind]
        left.plot(ns, [f[f"bcast{n}_p99_ms"] for n in ns], style, marker="o", label=r.config.label)
    left.set_xlabel("sockets (one broadcast)")
    left.set_ylabel("p99 latency, publish to receive (ms)")
    left.set_yscale("log")
    left.set_title("Broadcast latency against N")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)

    top = 0
    for r in results:
        steps = r.figures.get("sustained")
        if not steps:
            continue
        style = STYLES[r.config.kind]
        xs = [x["offered"] for x in steps]
        ys = [x["achieved"] for x in steps]
        (line,) = right.plot(xs, ys, style, marker="o", label=r.config.label)
        failed = [(x["offered"], x["achieved"]) for x in steps if not x["pass"]]
        if failed:
            right.plot(*zip(*failed, strict=True), "x", color=line.get_color(), markersize=12)
        top = max(top, *xs)
    low = min((x["offered"] for r in results for x in r.figures.get("sustained") or []), default=1)
    right.plot([low, top], [low, top], color="grey", linewidth=0.8, label="achieved = offered")
    right.set_xscale("log")
    right.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")
    for axis in (right.xaxis, right.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_xlabel("offered deliveries/s (broadcast to N1 sockets)")
    right.set_ylabel("achieved deliveries/s")
    right.set_title(
        f"Sustained fan-out (x: failed: p99 > {P99_LIMIT * 1000:.0f} ms, lost, or < 90% kept up)"
    )
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
