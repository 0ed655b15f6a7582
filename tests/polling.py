"""Waiting in tests: the one polling loop (a condition, a timeout, a message), and the waits
built on it that tests share (views caught up with the log, a server answering)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call `condition` until it returns something true, and return that; fail the test,
    saying `what` did not happen, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:g} s")
        time.sleep(interval)


def caught_up(client: Any, timeout: float = 20) -> None:
    """Wait until the app's projections have applied everything in the log so far."""
    state = client.app.state
    state.queries.projections.wait(state.ledger.core.log_position(), timeout=timeout)


def answering(url: str, timeout: float = 20, path: str = "/health") -> None:
    """Wait until the server at `url` answers `path` with 200."""

    def up() -> bool:
        try:
            return httpx.get(f"{url}{path}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout, f"the server at {url} did not answer {path}")
