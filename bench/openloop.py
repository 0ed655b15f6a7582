"""A constant-rate (open-loop) POS client: sale i is due at start + i / rate, whether or not
earlier ones have been answered, the way customers keep arriving at tills.

wrk has no rate option (its pacing is closed-loop: a connection waits for its answer before
the next pause) and wrk2 is not packaged by Debian, hence this small client. Each sale takes
an idle keep-alive connection or opens one (up to `--max-connections`); its latency is
measured from the moment it was *due*, not from when it could be sent, so a stall of the
server (or of this client) counts for every sale that should have been sent during it: no
coordinated omission. The receipts are sales.lua's (same stores, keys, members, hot members,
1-6 lines, promoted SKUs, a few `no_points` lines), read from the JSON chain file that
bench/chain.py writes beside the Lua one.

Prints one line `BENCH_RESULT {json}` on stdout (the shape of sales.lua's, plus `offered`,
`sent`, `late_starts` and `service_latency_us`), which bench/harness.py parses.

    .venv/bin/python -m bench.openloop --url http://127.0.0.1:8000 --chain /tmp/c.json \\
        --rate 500 --seconds 30 --tag R1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CATEGORIES = ("otc", "otc", "otc", "rx", "rx", "tcm", "supplement", "device")
HOT, HOT_SHARE = 5, 0.10
MARK = "BENCH_RESULT "


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)  # from the due time
    service_us: list[int] = field(default_factory=list)  # from the write
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(
        default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    samples: list[str] = field(default_factory=list)
    late_starts: int = 0  # sales sent more than 1 ms after they were due (client behind)


class Receipts:
    """sales.lua's receipts, from the JSON chain file."""

    def __init__(self, chain: dict[str, Any], tag: str, seed: int) -> None:
        self.chain = chain
        self.tag = tag
        self.rng = random.Random(seed)
        self.counter = 0
        self.member_format = f"{chain['member_prefix']}{{:0{chain['member_width']}d}}"

    def _line(self) -> str:
        rng = self.rng
        if rng.random() < 0.08:
            sku, category = rng.choice(self.chain["promoted_skus"]), "otc"
        else:
            sku, category = f"SKU-{rng.randint(1, 2000):04d}", rng.choice(CATEGORIES)
        no_points = ',"no_points":true' if rng.random() < 0.06 else ""
        return (
            f'{{"sku":"{sku}","category":"{category}","amount_fen":{rng.randint(300, 30000)},'
            f'"quantity":{rng.randint(1, 3)}{no_points}}}'
        )

    def next(self) -> tuple[str, bytes]:
        """(pos key, body) of the next sale."""
        rng = self.rng
        self.counter += 1
        store = rng.randrange(len(self.chain["stores"]))
        n = rng.randrange(HOT) if rng.random() < HOT_SHARE else rng.randrange(self.chain["members"])
        at = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = ",".join(self._line() for _ in range(rng.randint(1, 6)))
        body = (
            f'{{"store_id":"{self.chain["stores"][store]}","receipt_no":"{self.tag}-o-'
            f'{self.counter}","member_id":"{self.member_format.format(n)}","occurred_at":"{at}",'
            f'"lines":[{lines}]}}'
        )
        return self.chain["keys"][store], body.encode()


class Client:
    def __init__(self, url: str, max_connections: int, timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(max_connections)
        self.opened = 0
        self.timeout = timeout

    async def post(self, key: str, body: bytes, due: float, tally: Tally) -> None:
        async with self.slots:
            sent = time.perf_counter()
            if sent - due > 0.001:
                tally.late_starts += 1
            try:
                status, text = await asyncio.wait_for(self._exchange(key, body), self.timeout)
            except TimeoutError:
                tally.socket_errors["timeout"] += 1
                return
            except OSError:
                tally.socket_errors["read"] += 1
                return
            done = time.perf_counter()
        tally.latencies_us.append(round((done - due) * 1e6))
        tally.service_us.append(round((done - sent) * 1e6))
        tally.statuses[str(status)] = tally.statuses.get(str(status), 0) + 1
        if status != 201 and len(tally.samples) < 10:
            tally.samples.append(f"{status} {text[:300]}")

    async def _exchange(self, key: str, body: bytes) -> tuple[int, str]:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        head = (
            f"POST /v1/sales HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            writer.write(head + body)
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
            }
            payload = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if fields.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, payload.decode(errors="replace")


def percentile(values: list[int], p: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def offer(args: argparse.Namespace) -> dict[str, Any]:
    chain = json.loads(Path(args.chain).read_text())
    receipts = Receipts(chain, args.tag, seed=hash(args.tag) & 0xFFFF)
    client = Client(args.url, args.max_connections, args.timeout)
    tally = Tally()
    tasks: set[asyncio.Task[None]] = set()
    interval = 1 / args.rate
    total = round(args.rate * args.seconds)
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i * interval
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        key, body = receipts.next()
        task = asyncio.create_task(client.post(key, body, due, tally))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    duration = time.perf_counter() - start
    for _, writer in client.idle:
        writer.close()
    lat, svc = tally.latencies_us, tally.service_us
    return {
        "duration_us": round(duration * 1e6),
        "offered": total,
        "sent": total,
        "requests": len(lat),
        "statuses": tally.statuses,
        "socket_errors": tally.socket_errors,
        "latency_us": {
            **{f"p{p:g}": percentile(lat, p) for p in (50, 90, 99, 99.9)},
            "mean": round(sum(lat) / len(lat), 1) if lat else 0,
            "max": max(lat, default=0),
        },
        "service_latency_us": {f"p{p:g}": percentile(svc, p) for p in (50, 90, 99, 99.9)},
        "late_starts": tally.late_starts,
        "connections_opened": client.opened,
        "samples": tally.samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.openloop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--chain", required=True, help="the JSON chain file (bench/chain.py)")
    parser.add_argument("--rate", type=float, default=500, help="sales offered per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--tag", default="O")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args(argv)
    result = asyncio.run(offer(args))
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
