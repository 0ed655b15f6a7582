"""docs/DEPLOY.md, run as written: the production layout (its `deploy:layout` block, one process
a line) started on a throwaway PostgreSQL database takes POS traffic, the projections run in
`ledger project` alone and the scheduler in `ledger schedule`; the restore drill (its
`deploy:restore` block, as one bash script) restores a dump into a new database where a started
service answers the same balances and history, and personal data is readable with the master
key kept beside the dump."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.harness import (
    REPO,
    VENV_BIN,
    database_url,
    drop_database,
    free_port,
    random_database_name,
    serve,
    stop_process_group,
    throwaway_database,
    wait_for_projections,
)
from projections.runtime import PROJECTIONS
from tests.chain import Chain, sale_body
from tests.conftest import ADMIN_KEY, PG_ADMIN_URL, TEST_MASTER_KEY
from tests.polling import answering, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.solo]
DEPLOY = REPO / "docs" / "DEPLOY.md"
SALES = 40


def deploy_block(name: str) -> str:
    """The text of DEPLOY.md's ```sh deploy:<name> block."""
    found = re.search(rf"```sh deploy:{name}\n(.*?)```", DEPLOY.read_text(), re.S)
    assert found is not None, f"DEPLOY.md has no `deploy:{name}` block"
    return found.group(1)


def layout_commands() -> list[str]:
    lines = deploy_block("layout").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _operator_env(url: str, tmp_path: Path, port: int) -> dict[str, str]:
    """What DEPLOY.md's environment file holds, with this test's values."""
    metrics = tmp_path / "metrics"
    metrics.mkdir(exist_ok=True)
    path = str(VENV_BIN) + os.pathsep + os.environ.get("PATH", "")
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")} | {
        "PATH": path,
        "LEDGER_ENV": "production",
        "LEDGER_DATABASE_URL": url,
        "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex(),
        "LEDGER_ADMIN_KEY": ADMIN_KEY,
        "LEDGER_PORT": str(port),
        "LEDGER_WORKERS": "2",  # the file says 4 (a core each); this machine has 2
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "LEDGER_RATE_LIMIT_POS": "0",
    }


@contextlib.contextmanager
def started(commands: list[str], env: dict[str, str], logs: Path) -> Iterator[list[Path]]:
    processes, paths = [], []
    try:
        for n, command in enumerate(commands):
            path = logs / f"process-{n}.log"
            with path.open("wb") as log:
                processes.append(
                    subprocess.Popen(  # noqa: S603 - DEPLOY.md's own commands
                        ["/bin/bash", "-c", command],
                        cwd=logs,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
            paths.append(path)
        yield paths
    finally:
        for process in processes:
            stop_process_group(process)


def _leases(path: Path) -> list[str]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line)["lease"] for line in lines if '"lease_taken"' in line]


def _connections(url: str) -> int:
    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_documented_production_layout_takes_pos_traffic(tmp_path: Path) -> None:
    commands = layout_commands()
    assert "ledger serve" in commands[0]
    assert commands[1:] == ["ledger project", "ledger schedule"]
    port = free_port()
    with throwaway_database(PG_ADMIN_URL, random_database_name("deploy")) as url:
        env = _operator_env(url, tmp_path, port)
        with started(commands, env, tmp_path) as logs:
            base = f"http://127.0.0.1:{port}"
            answering(base, timeout=120, path="/health/live")
            with httpx.Client(base_url=base, timeout=30) as client:
                chain = Chain(client).standard()
                assert chain.enrol("M1").status_code == 201
                pos = chain.pos("S1")
                for n in range(SALES):
                    sale = client.post("/v1/sales", json=sale_body(f"R{n}"), headers=pos)
                    assert sale.status_code == 201, sale.text
                answering(base, timeout=60)  # ready
                service = chain.service()

                def accruals() -> int:  # in the history view, which `ledger project` keeps
                    history = client.get("/v1/members/M1/history?limit=200", headers=service)
                    assert history.status_code == 200
                    items = history.json()["items"]
                    return len([i for i in items if i["type"] == "PointsAccrued"])

                wait_until(lambda: accruals() == SALES, 60, "every sale in the history view")
            idle = _connections(url)
            wait_until(lambda: _leases(logs[2]) == ["scheduler"], 30, "the scheduler's lease")
            api, projector, scheduler = (_leases(path) for path in logs)
    print(f"connections to the database, layout idle after the traffic: {idle}")
    assert api == []  # the API processes run no projection and no scheduler
    assert sorted(projector) == sorted(PROJECTIONS)
    assert scheduler == ["scheduler"]


def _state(base: str, pos: dict[str, str], service: dict[str, str]) -> dict[str, object]:
    with httpx.Client(base_url=base, timeout=30) as client:
        return {
            card: (
                client.get(f"/v1/members/{card}", headers=pos).json()["points"],
                client.get(f"/v1/members/{card}/history?limit=200", headers=service).json()[
                    "items"
                ],
                client.get(f"/v1/members/{card}/export", headers=service).json()["personal"],
            )
            for card in ("M1", "M2")
        }


def test_the_documented_restore_drill_brings_back_balances_history_and_personal_data(
    tmp_path: Path,
) -> None:
    source_name = random_database_name("drill_source")
    restored_name = random_database_name("drill_restored")
    with throwaway_database(PG_ADMIN_URL, source_name) as source:
        with serve(
            source,
            workers=1,
            admin_key=ADMIN_KEY,
            master_key_hex=TEST_MASTER_KEY.hex(),
            log_path=tmp_path / "source.log",
        ) as server:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                chain = Chain(client).standard()
                assert chain.enrol("M1", name="王芳", phone="13800138000").status_code == 201
                assert chain.enrol("M2", name="李雷").status_code == 201
                pos, service = chain.pos("S1"), chain.service()
                for n in range(10):
                    body = sale_body(f"R{n}") | {"member_id": f"M{1 + n % 2}"}
                    assert client.post("/v1/sales", json=body, headers=pos).status_code == 201
            answering(server.base_url, timeout=60)
            wait_for_projections(server.base_url, 60)
            before = _state(server.base_url, pos, service)
        try:
            drill = subprocess.run(  # noqa: S603 - DEPLOY.md's own drill
                ["/bin/bash", "-euo", "pipefail", "-c", deploy_block("restore")],
                cwd=tmp_path,
                env=os.environ
                | {
                    "PATH": str(VENV_BIN) + os.pathsep + os.environ.get("PATH", ""),
                    "LEDGER_DATABASE_URL": source,
                    "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex(),  # the environment file's
                    "PG_ADMIN_URL": PG_ADMIN_URL,
                    "RESTORE_DB": restored_name,
                    "DUMP": str(tmp_path / "ledger.dump"),
                },
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert drill.returncode == 0, drill.stdout + drill.stderr
            restored = database_url(PG_ADMIN_URL, restored_name)
            with serve(
                restored,
                workers=1,
                admin_key=ADMIN_KEY,
                master_key_hex=TEST_MASTER_KEY.hex(),
                log_path=tmp_path / "restored.log",
            ) as server:
                answering(server.base_url, timeout=60)
                after = _state(server.base_url, pos, service)
        finally:
            drop_database(PG_ADMIN_URL, restored_name)
    assert after == before
    assert "王芳" in json.dumps(before["M1"], ensure_ascii=False)
