"""Step timing: every step reports its own elapsed time in its output."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def epoch(rfc3339: str | None) -> int | None:
    """RFC 3339 (HostedAI's timestamps) -> epoch seconds; None if absent or unreadable."""
    if not rfc3339:
        return None
    try:
        return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def iso(epoch_seconds: int | None) -> str | None:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat() if epoch_seconds else None
