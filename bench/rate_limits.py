"""The per-key rate limit at work (SPEC 3.1, docs/DECISIONS.md D35).

`python -m bench.rate_limits` serves the ledger (SQLite, a temporary file) with the default
limits, issues a POS and a service key, and lets 4 threads ask for an unknown member as fast as
they can for a few seconds with each key; it prints one JSON line per key: requests sent,
served (404), refused (429), the rate served and the most a token bucket allows (one second's
allowance plus the rate times the duration), and the Retry-After values seen.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from api.app import create_app
from ledger.settings import Settings

ADMIN_KEY = "bench-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _key(http: httpx.Client, body: dict[str, str]) -> dict[str, str]:
    body = {"holder": "bench"} | body
    key = http.post("/v1/admin/api-keys", json=body, headers=ADMIN).json()["key"]
    return {"Authorization": f"Bearer {key}"}


def hammer(url: str, headers: dict[str, str], seconds: float, threads: int) -> dict[str, object]:
    counts: collections.Counter[int] = collections.Counter()
    retry_after: set[str] = set()
    stop = time.monotonic() + seconds

    def run() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while time.monotonic() < stop:
                response = http.get("/v1/members/NOPE", headers=headers)
                counts[response.status_code] += 1
                if response.status_code == 429:
                    retry_after.add(response.headers.get("retry-after", ""))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {
        "sent": sum(counts.values()),
        "served": counts[404],
        "refused_429": counts[429],
        "served_per_second": round(counts[404] / seconds, 1),
        "retry_after": sorted(retry_after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ledger-rate-"))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'ledger.db'}", admin_key=ADMIN_KEY, master_key=bytes(32)
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    with httpx.Client(base_url=url, timeout=10) as http:
        http.put("/v1/stores/S1", json={"name": "S1", "kind": "direct"}, headers=ADMIN)
        keys = {
            "pos": (_key(http, {"role": "pos", "store_id": "S1"}), settings.rate_limit_pos),
            "service": (_key(http, {"role": "service"}), settings.rate_limit_other),
        }
    for role, (headers, rate) in keys.items():
        figures = hammer(url, headers, args.seconds, args.threads)
        bucket_most = rate * (1 + args.seconds)
        print(
            json.dumps({"key": role, "rate": rate, "bucket_allows_at_most": bucket_most} | figures)
        )
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
