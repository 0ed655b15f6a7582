"""/docs in a real browser (Debian's Chromium): Swagger UI draws every operation of the
service's document under the page's CSP, with no script or style refused and no request to
any other origin."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from bench.harness import serve
from tests.conftest import ADMIN_KEY, TEST_MASTER_KEY

pytestmark = pytest.mark.e2e


def test_swagger_ui_draws_every_operation_under_the_csp_from_this_origin_only(
    page: Page, tmp_path: Path
) -> None:
    with serve(
        f"sqlite:///{tmp_path / 'ledger.db'}",
        workers=1,
        admin_key=ADMIN_KEY,
        master_key_hex=TEST_MASTER_KEY.hex(),
        log_path=tmp_path / "serve.log",
    ) as server:
        problems: list[str] = []
        requested: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"{server.base_url}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        operations = page.locator(".opblock").count()
        title = page.locator(".info .title").inner_text()
    assert operations >= 35
    assert "pharmacy-ledger" in title
    assert problems == []
    assert all(url.startswith(server.base_url) or url.startswith("data:") for url in requested)
