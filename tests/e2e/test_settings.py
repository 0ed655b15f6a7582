"""Settings from the environment (ledger/settings.py): a wrong LEDGER_* value stops every
`ledger` command, `--help` included, with exit 2 and one line naming the variable; the
database URL's libpq parameters reach PostgreSQL; an unreachable server is one line after a
bounded wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from bench.harness import free_port
from ledger.application import open_ledger
from ledger.infrastructure.reachable import Unreachable, wait_for_database
from ledger.settings import ConfigError, Settings, read_environment
from tests.conftest import TEST_MASTER_KEY, TEST_POSTGRES, new_pg_schema

pytestmark = pytest.mark.e2e
LEDGER = str(Path(sys.executable).with_name("ledger"))


def _ledger(env: dict[str, str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(  # noqa: S603 - our own command
        [LEDGER, *argv],
        env=clean | env,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "argv", "said"),
    [
        ("LEDGER_MAX_BODY_BYTES", "256k", ["serve"], "expected a whole number of 1 or more"),
        ("LEDGER_PROJECTIONS", "of", ["project"], "expected one of inline, off"),
        ("LEDGER_PORT", "abc", ["--help"], "expected a whole number from 1 to 65535"),
        ("LEDGER_EXPIRE_DAILY", "maybe", ["serve"], "expected 1/0, true/false, yes/no or on/off"),
        ("LEDGER_PG_POOL_SIZE", "0", ["serve"], "expected a whole number of 1 or more"),
        ("LEDGER_START_TIMEOUT", "soon", ["verify"], "expected a number of 0 or more"),
        ("LEDGER_DATABASE_URL", "postgresql://h/db?sslmod=x", ["serve"], "sslmod"),
        ("LEDGER_TIMEZONE", "Mars/Olympus", ["serve"], "unknown time zone"),
    ],
)
def test_a_wrong_setting_exits_2_with_one_line_naming_the_variable(
    variable: str, value: str, argv: list[str], said: str, tmp_path: Path
) -> None:
    done = _ledger({variable: value}, *argv, cwd=tmp_path)
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ledger: {variable}"), lines
    assert said in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing made: no key file, no database


def test_the_environment_decodes_into_typed_settings() -> None:
    env = {
        "LEDGER_PROJECTIONS": "OFF",
        "LEDGER_EXPIRE_DAILY": "yes",
        "LEDGER_PG_POOL_SIZE": "4",
        "LEDGER_PG_MAX_OVERFLOW": "6",
        "LEDGER_PG_CONNECT_TIMEOUT": "3",
        "LEDGER_PG_LOCK_TIMEOUT": "7",
        "LEDGER_MASTER_KEY": "22" * 32,
        "LEDGER_PORT": " 8801 ",
        "LEDGER_MAX_BODY_BYTES": "",  # empty means the default, as unset
    }
    environment = read_environment(env)
    assert environment.port == 8801
    settings = environment.settings()
    assert (settings.run_projections, settings.expire_daily) == (False, True)
    assert settings.max_body_bytes == 256 * 1024
    assert (settings.postgres.pool_size, settings.postgres.max_overflow) == (4, 6)
    assert settings.postgres.connect_timeout_seconds == 3
    assert settings.postgres.lock_timeout_seconds == 7
    with pytest.raises(ConfigError, match="LEDGER_ENV='staging'"):
        read_environment({"LEDGER_ENV": "staging"})


def test_every_libpq_parameter_of_the_url_reaches_postgresql(pg_database: str) -> None:
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    url = f"{new_pg_schema(pg_database)}&application_name={name}"
    settings = Settings(database_url=url, master_key=TEST_MASTER_KEY, postgres=TEST_POSTGRES)
    ledger = open_ledger(settings)
    try:
        ledger.core.log_position()
        with psycopg.connect(pg_database) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name]
            ).fetchone()
        assert row is not None
        assert row[0] >= 1
    finally:
        ledger.close()
    # sslmode is honoured too: the test server has no TLS, so libpq refuses `require`
    with pytest.raises(Unreachable, match="server does not support SSL"):
        wait_for_database(f"{url}&sslmode=require", 0, 2)
    wait_for_database(f"{url}&sslmode=disable", 0, 2)


def test_a_start_against_a_closed_port_is_one_line_after_the_bounded_wait(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/ledger"
    started = time.monotonic()
    done = _ledger({"LEDGER_DATABASE_URL": url, "LEDGER_START_TIMEOUT": "3"}, "serve", cwd=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 1, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "not reachable after 3 s (LEDGER_START_TIMEOUT)" in lines[0]
    assert "Traceback" not in done.stderr
    assert 2.5 <= took < 20, took
