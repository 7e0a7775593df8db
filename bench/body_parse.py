"""Request body parsing (size, nesting depth, JSON, validation) on the worst
bodies a caller can send under the size limit: each must stay at
milliseconds, since the API function parses before any quota applies."""

from __future__ import annotations

import time

HEADERS = ["body", "bytes", "answer", "best of 3 ms"]


def bodies() -> dict[str, bytes]:
    from harpoon.models import MAX_BODY_BYTES, MAX_TEXT_BYTES

    half = MAX_BODY_BYTES // 2 - 8
    return {
        "'[]' up to the size limit": b"[]" * (MAX_BODY_BYTES // 2),
        "'[' x 100,000 (deep)": b"[" * 100_000,
        'unterminated string of \\" up to the limit': b'{"text": "' + b'\\"' * half,
        "valid, 32 KiB of text": b'{"text": "' + b"a" * MAX_TEXT_BYTES + b'"}',
        "32 KiB of text as \\u escapes": b'{"text": "' + b"\\u00e9" * (MAX_TEXT_BYTES // 2) + b'"}',
    }


def measure() -> list[list[object]]:
    from harpoon.api import ApiError, parse_process_request

    rows = []
    for name, raw in bodies().items():
        best, answer = float("inf"), "200"
        for _ in range(3):
            started = time.perf_counter()
            try:
                parse_process_request("application/json", raw)
            except ApiError as exc:
                answer = f"{exc.status} {exc.code}"
            best = min(best, time.perf_counter() - started)
        rows.append([name, f"{len(raw):,}", answer, f"{best * 1e3:.2f}"])
    return rows
