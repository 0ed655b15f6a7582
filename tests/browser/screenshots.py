"""`make screenshots`: PNGs of each console page on a served demo chain (SQLite), written to
docs/screenshots/ (or the folder given). Debian's Chromium, headless; Chinese labels need
Debian's fonts-noto-cjk, which the Makefile installs with it."""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, sync_playwright

from tests.browser.conftest import CHROMIUM
from tests.browser.server import DemoServer, chain_today, demo_server
from tests.browser.test_console_browser import member_with_an_accrual, sign_in

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


def _shoot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    sys.stderr.write(f"wrote {path}\n")


def _pages(page: Page, demo: DemoServer, folder: Path) -> None:
    page.goto(f"{demo.url}/console/login")
    _shoot(page, folder, "login")
    sign_in(page, demo, "service")
    card, accrual = member_with_an_accrual(demo)
    as_of = (chain_today() - timedelta(days=14)).isoformat()
    page.goto(f"{demo.url}/console/members?card={card}&as_of={as_of}")
    page.locator(f'article.entry[data-reference="{accrual["reference"]}"] summary').first.click()
    _shoot(page, folder, "members")
    page.goto(f"{demo.url}/console/operations")
    _shoot(page, folder, "operations")
    sign_in(page, demo, "finance")
    period = (chain_today() - timedelta(days=20)).strftime("%Y-%m")
    page.goto(f"{demo.url}/console/finance?period={period}")
    _shoot(page, folder, "finance")
    last_month = (chain_today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    page.goto(f"{demo.url}/console/finance/close?period={last_month}")
    _shoot(page, folder, "finance-close")
    page.goto(f"{demo.url}/console/language?to=en&back=/console/finance?period={period}")
    _shoot(page, folder, "finance-en")
    sign_in(page, demo, "admin")
    page.goto(f"{demo.url}/console/operations")
    _shoot(page, folder, "operations-admin")


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite:///{workdir / 'ledger.db'}"
        with demo_server(database_url, workdir) as demo, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
            _pages(page, demo, folder)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
