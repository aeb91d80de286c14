"""The PNG: broadcast latency against N, deliveries/s against offered load."""

from __future__ import annotations

from pathlib import Path

from .scenario import Result


def draw(results: list[Result], path: Path) -> None:
    pass
