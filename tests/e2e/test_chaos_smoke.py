"""A small `make chaos` run in the test suite: faults and crashes everywhere,
then the audit must find no leaked GPU, no double allocation and no request
without a proper answer. (The full run is `make chaos N=500 FAULTS=0.2`.)"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.slow
def test_chaos_run_leaks_nothing():
    run = subprocess.run([sys.executable, "-m", "local.chaos", "-n", "40", "--faults", "0.3", "--concurrency", "8",
                          "--seed", "11"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    table = dict(
        (cells[1].strip(), cells[2].strip())
        for cells in (line.split("|") for line in run.stdout.splitlines() if line.startswith("| "))
    )
    assert table["requests sent"] == "40"
    assert table["leaked"] == "0" and table["double allocations"] == "0" and table["no answer"] == "0"
    assert table["GPU shared at once"] == "0"
    assert int(table["step crashes injected"]) > 0  # the run did hurt
