"""Slow-header clients against an HTTP server on loopback (docs/DECISIONS.md D34).

`python -m bench.slow_headers` opens N connections that each send a partial request (a request
line and a header, never the blank line ending the headers), holds them S seconds while probing
`/health/live` every 0.5 s on fresh connections, and prints one JSON line per server: plain
uvicorn (httptools), uvicorn with `limit_concurrency`, and `ledger serve`'s protocol
(`entry.connections`), each serving a trivial ASGI app.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from entry.connections import bounded, raise_descriptor_limit

PARTIAL = b"GET /health/live HTTP/1.1\r\nHost: ledger\r\nX-Slow: "


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def measure(name: str, connections: int, seconds: float, **config: Any) -> dict[str, Any]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", backlog=4096, **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    held = []
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(PARTIAL)
        s.setblocking(False)
        held.append(s)
    started, probes, answered, most_open = time.monotonic(), 0, 0, 0
    with httpx.Client(timeout=2) as http:
        while time.monotonic() - started < seconds:
            probes += 1
            with contextlib.suppress(httpx.HTTPError):
                answered += http.get(f"http://127.0.0.1:{port}/health/live").status_code == 200
            most_open = max(most_open, len(server.server_state.connections))
            time.sleep(0.5)
    closed = sum(_closed(s) for s in held)
    for s in held:
        s.close()
    server.should_exit = True
    thread.join(timeout=10)
    return {
        "server": name,
        "half_open": connections,
        "held_seconds": seconds,
        "closed_by_server": closed,
        "most_open_at_once": most_open,
        "probes": probes,
        "probes_answered_200": answered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=3_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    raise_descriptor_limit(args.connections + 1_000)
    runs: list[tuple[str, dict[str, Any]]] = [
        ("uvicorn httptools", {"http": "httptools"}),
        (
            "uvicorn httptools limit_concurrency=1000",
            {"http": "httptools", "limit_concurrency": 1000},
        ),
        ("ledger serve (entry.connections, 1000, 10 s)", {"http": bounded(1_000, 10.0)}),
    ]
    for name, config in runs:
        print(json.dumps(measure(name, args.connections, args.seconds, **config)))


if __name__ == "__main__":
    main()
