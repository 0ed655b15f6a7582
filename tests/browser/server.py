"""A real `ledger serve` on a small demo chain, for the browser tests and `make screenshots`.

`ledger demo` writes the chain into an empty store (a few stores, a few dozen members, the last
six weeks), then `ledger serve` runs on a free port in its own process group; once `/health`
answers and the projections have caught up, service and finance keys are issued over the API.
On the way out the whole group is stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

MASTER_KEY_HEX = "22" * 32
ADMIN_KEY = "browser-admin-key-0123456789"
DEMO = ["--stores", "3", "--members", "40", "--days", "40", "--seed", "6"]
START_SECONDS = 60.0
LAG = re.compile(r'^ledger_projection_lag_events\{projection="[^"]+"\} ([0-9.e+]+)$', re.M)


def chain_today() -> date:
    """Today in the demo chain's time zone (the server's default, Asia/Shanghai)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@dataclass
class DemoServer:
    url: str
    keys: dict[str, str] = field(default_factory=dict)  # role → API key

    def api(self, role: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env | {
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_MASTER_KEY": MASTER_KEY_HEX,
        "LEDGER_ADMIN_KEY": ADMIN_KEY,
        "PYTHONFAULTHANDLER": "1",  # a crash of the server leaves its traceback in its log
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until /health answers and no projection lags the log."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ledger serve exited ({process.returncode}):\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                lags = LAG.findall(httpx.get(f"{url}/metrics", timeout=5).text)
                if lags and not any(float(lag) for lag in lags):
                    return
        time.sleep(0.2)
    raise RuntimeError(f"ledger serve was not ready in {START_SECONDS} s:\n{log.read_text()}")


@contextlib.contextmanager
def demo_server(database_url: str, workdir: Path) -> Iterator[DemoServer]:
    """The demo chain in `database_url` (an empty store), served; yields once it is ready."""
    env = _env(database_url)
    start = chain_today() - timedelta(days=42)
    subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "ledger", "demo", *DEMO, "--start", start.isoformat()],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    log = workdir / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "ledger", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        server = DemoServer(url=f"http://127.0.0.1:{port}")
        _wait_ready(server.url, process, log)
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        for role in ("service", "finance"):
            issued = httpx.post(
                f"{server.url}/v1/admin/api-keys",
                json={"role": role, "holder": f"browser {role}"},
                headers=admin,
                timeout=10,
            )
            issued.raise_for_status()
            server.keys[role] = issued.json()["key"]
        server.keys["admin"] = ADMIN_KEY
        yield server
    finally:
        _stop(process)
