"""A POS whose response was lost (the server committed the sale and answered, the connection
broke before the answer arrived) retries the same body: exactly one sale, and the retry gets
the original receipt with 200. A proxy between the POS and the service forwards the request,
reads the service's whole answer, and drops the connection instead of passing it on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.chain import Chain, sale_body
from tests.polling import wait_until

pytestmark = pytest.mark.e2e


class DroppingProxy(ThreadingHTTPServer):
    """Forwards each POST to `upstream`, keeps the answer in `dropped`, and never replies."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _DropHandler)
        self.upstream = upstream
        self.dropped: list[httpx.Response] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _DropHandler(BaseHTTPRequestHandler):
    server: DroppingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization",)}
        headers["content-type"] = "application/json"
        answer = httpx.post(self.server.upstream + self.path, content=body, headers=headers)
        self.server.dropped.append(answer)
        self.close_connection = True  # the answer is lost on the way back

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def proxy(live_url: str) -> Iterator[DroppingProxy]:
    server = DroppingProxy(live_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_pos_retrying_after_a_lost_response_gets_the_original_receipt_and_one_sale(
    live_url: str, proxy: DroppingProxy
) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        chain = Chain(client).standard()
        assert chain.enrol("M1").status_code == 201
        pos = chain.pos("S1")
        body = sale_body("R-LOST")

        with pytest.raises(httpx.TransportError):  # what the POS sees: no answer at all
            httpx.post(f"{proxy.url}/v1/sales", json=body, headers=pos, timeout=30)
        (lost,) = proxy.dropped
        assert lost.status_code == 201, lost.text  # the service had committed and answered

        for _ in range(2):  # the POS retries (and once more, say after a second timeout)
            retry = client.post("/v1/sales", json=body, headers=pos)
            assert retry.status_code == 200, retry.text
            assert retry.json() == lost.json()

        assert chain.member()["points"] == lost.json()["points_earned"] == 100
        history = wait_until(  # the history is a projection: wait for it, then it shows one accrual
            lambda: client.get(
                "/v1/members/M1/history", params={"reference": "R-LOST"}, headers=chain.service()
            ).json()["items"],
            20,
            "the lost sale did not reach the history",
        )
        assert [e["type"] for e in history] == ["PointsAccrued"]
