"""Benchmarks (`make bench`): tables of medians and ratios measured side by side in one run."""
