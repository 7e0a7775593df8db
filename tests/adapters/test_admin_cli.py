"""`python -m harpoon.admin` on moto: what each command prints, and its
errors (exit codes, no traceback)."""

from __future__ import annotations

import io

import pytest
from moto import mock_aws

from harpoon import admin
from tests.fakes import template_table

TABLES = ["--table", "tenants", "--usage-table", "usage", "--region", "us-east-1"]


@pytest.fixture
def tables(aws_credentials):
    with mock_aws():
        template_table("TenantsTable", "tenants")
        template_table("UsageTable", "usage")
        yield


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return admin.main([*TABLES, "tenants", *args], out=out), out.getvalue()


def test_create_prints_the_key_once_and_list_never_does(tables):
    code, out = run("create", "acme", "--tier", "pro")
    assert code == 0 and out.startswith("created tenant acme (tier pro)\n")
    key = out.rsplit(": ", 1)[1].strip()
    assert key.startswith("hpn_")
    code, listing = run("list")
    assert code == 0 and key not in listing
    header, row = listing.splitlines()
    assert header.split() == ["TENANT", "TIER", "STATUS", "KEY", "CREATED", "(UTC)"]
    assert row.split()[:4] == ["acme", "pro", "active", key[:8] + "..."]


def test_rotate_disable_enable_and_usage(tables):
    run("create", "acme", "--tier", "basic")
    code, out = run("rotate-key", "acme")
    assert code == 0 and "new api key for acme" in out and out.rsplit(": ", 1)[1].strip().startswith("hpn_")
    assert run("disable", "acme") == (0, "tenant acme is disabled (API keys follow within a minute)\n")
    assert run("enable", "acme")[1].startswith("tenant acme is active")
    code, out = run("usage", "acme", "--month", "2026-11")
    assert (code, out) == (0, "acme in 2026-11: requests 0, tokens 0, GPU-seconds 0.0, cost 0.0000 USD; in flight now 0\n")


def test_errors_are_one_line_and_a_nonzero_exit(tables, capsys):
    assert run("create", "acme", "--tier", "pro")[0] == 0
    assert run("create", "acme", "--tier", "pro")[0] == 1
    assert "error: tenant 'acme' exists already" in capsys.readouterr().err
    assert run("create", "Bad Id", "--tier", "pro")[0] == 2
    assert "must be 1-32 characters" in capsys.readouterr().err
    assert run("disable", "ghost")[0] == 1
    assert "error: no tenant 'ghost'" in capsys.readouterr().err
    assert run("usage", "acme", "--month", "2026-13")[0] == 2
    assert "--month must be YYYY-MM" in capsys.readouterr().err
    assert run("create", "weak", "--tier", "pro", "--api-key", "hpn_123")[0] == 2
    assert "24 to 200 random characters" in capsys.readouterr().err


def test_a_stack_name_finds_the_tables_in_its_outputs(tables, capsys):
    code = admin.main(["--stack", "nope", "--region", "us-east-1", "tenants", "list"], out=io.StringIO())
    assert code == 1 and "nope" in capsys.readouterr().err  # CloudFormation: no such stack
    code = admin.main(["--region", "us-east-1", "tenants", "list"], out=io.StringIO())
    assert code == 2 and "--stack <deployed stack name>" in capsys.readouterr().err
