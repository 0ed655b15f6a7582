"""The Makefile, read with `make -n` (nothing runs): `make serve` installs only what serving needs
(no dev tools) while `make test` and `make lint` install everything; `PORT` and `LEDGER_PORT`
both choose the port; `make demo` builds a fresh demo.db and serves it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def dry_run(*args: str, **env: str) -> str:
    """What `make -B -n ARGS` would run (every target remade, so installs show too)."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "LEDGER_PORT")}
    done = subprocess.run(  # noqa: S603 - fixed arguments
        ["make", "-B", "-n", *args],  # noqa: S607 - the machine's make
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _serve_line(output: str) -> str:
    return next(line for line in output.splitlines() if " serve" in line and "ledger" in line)


def test_make_serve_installs_only_what_serving_needs() -> None:
    serve = dry_run("serve")
    assert "-e ." in serve and "[dev]" not in serve
    for target in ("test", "lint"):
        assert "-e '.[dev]'" in dry_run(target), target


def test_port_and_ledger_port_choose_the_port() -> None:
    assert _serve_line(dry_run("serve", PORT="8801")).endswith("--port 8801")
    assert _serve_line(dry_run("serve", "PORT=8802")).endswith("--port 8802")
    # Without PORT, no --port: `ledger serve` takes LEDGER_PORT (default 8000) itself.
    assert "--port" not in _serve_line(dry_run("serve", LEDGER_PORT="8801"))
    assert "--host" not in _serve_line(dry_run("serve", HOST="some-shells-hostname"))
    assert "--host 0.0.0.0" in _serve_line(dry_run("serve", "HOST=0.0.0.0"))


def test_make_demo_builds_a_fresh_demo_database_and_serves_it() -> None:
    demo = dry_run("demo", PORT="8803")
    assert "[dev]" not in demo
    lines = demo.splitlines()
    built = next(i for i, line in enumerate(lines) if "ledger demo" in line)
    assert lines[built - 1].startswith("rm -f demo.db ")
    assert "LEDGER_DATABASE_URL=sqlite:///./demo.db LEDGER_PORT=8803" in lines[built]
    assert _serve_line("\n".join(lines[built + 1 :])).endswith("serve  --port 8803")
