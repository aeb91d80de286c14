"""The results as Markdown: figures, ratios to the raw server and the baseline, targets."""

from __future__ import annotations

import math
from typing import Any

from .scenario import Result, Sizes


def render(results: list[Result], *, sizes: Sizes, command: str, elapsed: float) -> str:
    lines = ["# Results", ""]
    for r in results:
        lines.append(f"- {r.config.name}: {r.figures} {r.notes}")
    return "\n".join(lines) + "\n"


def fmt(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"
