"""Rate limits per API key (SPEC 3.1): a token bucket per key, holding one second's allowance.

A POS key may make LEDGER_RATE_LIMIT_POS requests a second (default 50), any other key
LEDGER_RATE_LIMIT_OTHER (default 200); 0 turns the limit off (benchmarks). A key that has used
its allowance gets 429 `rate-limited` with `Retry-After` (whole seconds, at least 1) until a
token has come back. The buckets live in each process (the SPEC's "in each process"): with N
workers a key may make N times the rate in all. Requests without a key (health, metrics, the
schema, the console's pages) are not counted here.

Why not Litestar's `RateLimitMiddleware` or the `limits` package: both count requests in
windows (Litestar: a fixed window per whole second, one rate for every caller, a JSON history
per request in a store; `limits`: fixed, moving or sliding windows), and the contract is a
token bucket with a rate per role. A bucket is two numbers per key and a few lines of code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, Scope, Send

from ledger.domain.apikey import Principal
from ledger.settings import Settings

EPSILON = 1e-9


class TokenBuckets:
    """One bucket per key: `rate` tokens a second, at most `rate` held (one second's worth)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, rate: int) -> float:
        """Take a token from `key`'s bucket: 0.0 if there was one, else the seconds until one
        comes back (the request is refused, and nothing is taken)."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(rate), now))
        tokens = min(float(rate), tokens + (now - at) * rate)
        if tokens >= 1.0 - EPSILON:  # floating-point refills: 0.1 s x 50/s is 5, not 4.999…
            self._buckets[key] = (max(tokens - 1.0, 0.0), now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate


def rate_for(principal: Principal, settings: Settings) -> int:
    return settings.rate_limit_pos if principal.role == "pos" else settings.rate_limit_other


def rate_limit(settings: Settings, buckets: TokenBuckets | None = None) -> Any:
    """ASGI middleware, after authentication (it reads the caller's key from the scope)."""
    kept = buckets or TokenBuckets()

    def middleware(app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            principal = scope.get("state", {}).get("principal")
            if isinstance(principal, Principal):
                rate = rate_for(principal, settings)
                wait = kept.take(principal.key_id, rate) if rate > 0 else 0.0
                if wait > 0:
                    raise TooManyRequestsException(
                        detail=f"this key may make {rate} requests a second; try again shortly",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
            await app(scope, receive, send)

        return limited

    return middleware
