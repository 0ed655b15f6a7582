"""One version, named everywhere: pyproject.toml's, as installed, is what `ledger --version`,
`python -m ledger --version`, `/health` and the OpenAPI document say."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from ledger.version import VERSION

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def pyproject_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def test_the_version_is_pyprojects() -> None:
    assert pyproject_version() == VERSION


@pytest.mark.parametrize(
    "argv",
    [[str(Path(sys.executable).parent / "ledger")], [sys.executable, "-m", "ledger"]],
    ids=["ledger", "python -m ledger"],
)
def test_the_command_names_the_version(argv: list[str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own command
        [*argv, "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == f"pharmacy-ledger {pyproject_version()}\n"


def test_health_and_the_openapi_document_name_it(client: TestClient[Any]) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["store"], body["version"]) == ("ok", "up", pyproject_version())
    assert client.get("/health/live").json()["version"] == pyproject_version()
    assert client.get("/schema").json()["info"]["version"] == pyproject_version()
