"""Classification time per prompt, on every prompt of the routing evaluation
set (3,715 prompts, eight languages, 2 to 400+ words): each prompt classified
REPEATS times after a warm-up; the median and p99 are over all the timings.
Also the worst cases found by review: 32 KiB inputs built to make a regex
backtrack (the best of 3 runs each)."""

from __future__ import annotations

import statistics
import time

REPEATS = 200


def measure(repeats: int = REPEATS) -> list[list[object]]:
    from evals.routing import load_examples
    from harpoon.classifier import classify

    examples = load_examples()
    groups = {"short (< 20 words)": [], "medium (20-99 words)": [], "long (100+ words)": [], "all": []}
    for ex in examples:
        classify(ex.text)  # warm-up: compiled patterns, caches of the interpreter
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            classify(ex.text)
            timings.append((time.perf_counter() - started) * 1e6)
        words = len(ex.text.split())
        size = "short (< 20 words)" if words < 20 else "medium (20-99 words)" if words < 100 else "long (100+ words)"
        groups[size].extend(timings)
        groups["all"].extend(timings)
    rows = []
    for name, timings in groups.items():
        if not timings:
            continue
        timings.sort()
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        rows.append([name, f"{len(timings) // repeats}", f"{statistics.median(timings):.1f}", f"{p99:.1f}"])
    return rows


HEADERS = ["prompts", "count", "median us", "p99 us"]


# Inputs that once took tens of milliseconds (unclosed quotes scanned to the
# span limit, whitespace runs backtracked over); each must stay at a few ms.
ADVERSARIAL = {
    "'«' x 32768": "«" * 32768,
    "'「' x 32768": "「" * 32768,
    "'a.' + 32764 spaces + 'b'": "a." + " " * 32764 + "b",
    "'a.' + 32764 newlines + 'b'": "a." + "\n" * 32764 + "b",
    "':' x 32768": ":" * 32768,
    "'a. ' x 10000": "a. " * 10000,
}
ADVERSARIAL_HEADERS = ["input", "characters", "best of 3 ms"]


def measure_adversarial() -> list[list[object]]:
    from harpoon.classifier import classify

    rows = []
    for name, text in ADVERSARIAL.items():
        classify(text)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            classify(text)
            best = min(best, time.perf_counter() - started)
        rows.append([name, f"{len(text):,}", f"{best * 1e3:.2f}"])
    return rows
