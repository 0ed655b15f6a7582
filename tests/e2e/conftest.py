"""HTTP fixtures: a TestClient over the whole app, and a real uvicorn server for concurrency."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from litestar.testing import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.chain import Chain
from tests.polling import answering


class Clock:
    """The service's clock in tests: real time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(settings, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def chain(client: TestClient) -> Chain:  # type: ignore[type-arg]
    return Chain(client)


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    """The service on a real socket (uvicorn in a thread), for tests that need true concurrency."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    answering(url)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
