"""Step timing: every step reports its own elapsed time in its output."""

from __future__ import annotations

import time


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
