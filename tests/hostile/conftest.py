"""Hostile-input fixtures: the e2e ones (a TestClient over the app), and `seeded_url`, one live
server per store for a whole module (schemathesis runs one test per operation against it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from ledger.settings import Settings
from tests.chain import Chain
from tests.conftest import ADMIN_KEY, STORES, TEST_MASTER_KEY, TEST_POSTGRES, new_pg_schema
from tests.e2e.conftest import chain, client, clock  # noqa: F401 - fixtures used here too
from tests.polling import wait_until


@pytest.fixture(scope="module", params=STORES)
def seeded_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service on a real socket for the module, with the standard chain and member M1."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / Path('ledger.db')}"
    else:
        database_url = new_pg_schema(request.getfixturevalue("pg_database"))
    settings = Settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        master_key=TEST_MASTER_KEY,
        rate_limit_pos=0,
        rate_limit_other=0,
        postgres=TEST_POSTGRES,
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the live server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as http:
        chain = Chain(http).standard()
        assert chain.enrol("M1").status_code == 201
        assert chain.sale("R1").status_code == 201
    yield url
    server.should_exit = True
    thread.join(timeout=10)
