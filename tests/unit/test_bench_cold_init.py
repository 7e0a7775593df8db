"""bench/cold_init.py keeps working: every function's cold-init snippet imports
its handler and builds its clients. No timing is asserted here."""

from __future__ import annotations

import subprocess

import pytest

from bench import cold_init

LAUNCHES = cold_init.launches()


def test_every_function_of_the_template_has_a_snippet():
    assert set(LAUNCHES) == set(cold_init.FIRST_REQUEST)


@pytest.mark.parametrize("logical_id", sorted(cold_init.FIRST_REQUEST))
def test_snippet_imports_the_handler_and_builds_its_clients(logical_id):
    argv, env, cwd = LAUNCHES[logical_id]
    # After the snippet: the handler Lambda would call is loaded, and the clients were built.
    check = "\nimport sys\nassert callable(sys.modules['handler'].lambda_handler)\n"
    if cold_init.FIRST_REQUEST[logical_id]:
        check += ("from harpoon import deps\n"
                  "assert any(f.cache_info().currsize for f in (deps.leases, deps.tenants, deps.quotas))\n")
    done = subprocess.run([*argv[:-1], argv[-1] + check], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")  # never a real AWS endpoint
    assert env["PYTHONPATH"].split(":")[0] == str(cwd)


def test_rows_say_whether_each_goal_is_met():
    result = {"functions": {
        name: {"median_ms": median, "min_ms": 1.0, "max_ms": 9.0, "bare_median_ms": 10.0, "ratio": median / 10.0,
               "goal_ratio": cold_init.GOALS.get(name, cold_init.DEFAULT_GOAL),
               "met": median / 10.0 <= cold_init.GOALS.get(name, cold_init.DEFAULT_GOAL),
               "ready_median_ms": median / 2, "ready_ratio": median / 20.0}
        for name, median in (("ClassifyFunction", 70.0), ("ApiFunction", 240.0))}}
    rows = cold_init.rows(result)
    assert [r[0] for r in rows] == ["ClassifyFunction", "ApiFunction"]
    assert [tuple(r[5:]) for r in rows] == [("7.0x", "<= 6x", "missed", "35.0", "3.5x"),
                                            ("24.0x", "<= 25x", "met", "120.0", "12.0x")]
    assert all(len(r) == len(cold_init.HEADERS) for r in rows)


def test_a_run_is_timed_to_its_exit_and_to_its_ready_line():
    elapsed, ready = cold_init.run_once(*cold_init._bare())
    assert 0 < ready <= elapsed
    with pytest.raises(RuntimeError, match="boom"):
        cold_init.run_once([*cold_init._bare()[0][:-1], "raise SystemExit('boom')"], *cold_init._bare()[1:])
