"""The README's quick start, run exactly as written (both stores): `ledger serve` on a free port
with an empty store and no `LEDGER_ADMIN_KEY` (so it makes the development admin key), then the
README's walk with bash, `BASE` set as the README tells a reader on another port. A `curl` first
on PATH passes every argument on to the real one and notes each answer's status on stderr, so
every step's method, path and status are checked, then the walk's effects through the API."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import ON_CI, TEST_MASTER_KEY
from tests.polling import answering, wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
WALK = re.compile(r"<!-- quick-start walk:[^\n]*-->\n```sh\n(.*?)```\n", re.S)
STATUS = re.compile(r"^HTTP (\d{3}) ([A-Z]+) https?://[^/]+(/\S*)$", re.M)


def readme_walk() -> str:
    found = WALK.findall((ROOT / "README.md").read_text())
    assert len(found) == 1, "README.md has one marked quick-start walk"
    return str(found[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def served(database_url: str, workdir: Path) -> Iterator[tuple[str, Path]]:
    """`ledger serve` as a reader starts it (no admin key given), in `workdir`; yields its URL
    and its output's file, and stops it (its process group) on the way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_ADMIN_KEY")}
    env |= {"LEDGER_DATABASE_URL": database_url, "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port, log = _free_port(), workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "ledger", "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        answering(url, timeout=60)
        yield url, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def noting_curl(bin_dir: Path) -> None:
    """A `curl` that runs the real one and writes `HTTP <status> <method> <url>` to stderr."""
    real = shutil.which("curl")
    assert real is not None
    bin_dir.mkdir()
    wrapper = bin_dir / "curl"
    note = "%{stderr}HTTP %{http_code} %{method} %{url_effective}\\n"
    wrapper.write_text(f'#!/bin/sh\nexec {real} -w "{note}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


def test_the_readme_quick_start_runs_as_written(database_url: str, tmp_path: Path) -> None:
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            (pytest.fail if ON_CI else pytest.skip)(f"the quick start needs {tool}")
    walk = readme_walk()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    noting_curl(tmp_path / "bin")
    with served(database_url, tmp_path) as (url, log):
        key_file = tmp_path / ".ledger-admin.key"
        admin_key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        banner = wait_until(log.read_text, 10, "serve printed nothing")
        assert url in banner and admin_key in banner and f"{url}/console" in banner

        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env |= {"BASE": url, "PATH": f"{tmp_path / 'bin'}:{env['PATH']}"}
        done = subprocess.run(  # noqa: S603 - the README's own block
            ["bash", "-c", walk],  # noqa: S607 - the reader's bash
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        steps = [(method, path, int(code)) for code, method, path in STATUS.findall(done.stderr)]
        assert steps == [
            ("PUT", "/v1/rules", 201),
            ("PUT", "/v1/stores/S1", 201),
            ("POST", "/v1/admin/api-keys", 201),
            ("POST", "/v1/admin/api-keys", 201),
            ("POST", "/v1/admin/api-keys", 201),
            ("POST", "/v1/members", 201),
            ("POST", "/v1/sales", 201),
            ("GET", "/v1/members/M1", 200),
            ("POST", "/v1/sales/S1/R1/refunds", 201),
            ("POST", "/v1/redemptions", 201),
            ("GET", "/v1/members/M1/history", 200),
            ("GET", f"/v1/settlements/{period}", 200),
        ], done.stderr

        out = done.stdout
        earned = int(re.findall(r'"points_earned": (\d+)', out)[0])
        reversed_ = int(re.findall(r'"points_reversed": (\d+)', out)[0])
        assert earned >= 222 and 0 < reversed_ < earned  # 222 on a plain day, more on others
        admin = {"Authorization": f"Bearer {admin_key}"}
        member = httpx.get(f"{url}/v1/members/M1", headers=admin).json()
        assert member["points"] == earned - reversed_ - 100
        for kind in ("PointsRedeemed", "PointsReversed", "PointsAccrued", "MemberEnrolled"):
            assert f"{kind} " in out
        assert "(by S1 till 1, cashier 张丽)" in out  # the key's holder and the sale's cashier
        issued = earned - reversed_
        assert f"S1 (franchise): {issued} points issued, fee {issued * 3} fen, " in out
        assert f"the store pays HQ {issued * 3 - 200} fen" in out
        assert f"console: {url}/console/login" in out
