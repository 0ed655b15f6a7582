"""Rate limits per API key (SPEC 3.1, finding 6 of issue 14: a POS key could probe card and ID
numbers at full speed): a token bucket holding one second's allowance, 429 problem documents
with Retry-After, each key on its own, 0 = off."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.ratelimit import TokenBuckets
from ledger.settings import ConfigError, Settings
from tests.chain import Chain

pytestmark = pytest.mark.e2e


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_holds_one_seconds_allowance_and_refills_at_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock)
    assert [buckets.take("k", 50) for _ in range(50)] == [0.0] * 50  # a full second at once
    assert buckets.take("k", 50) == pytest.approx(0.02)  # the 51st waits for a token
    clock.now += 0.1  # five tokens come back
    assert [buckets.take("k", 50) for _ in range(5)] == [0.0] * 5
    assert buckets.take("k", 50) > 0
    assert buckets.take("other", 50) == 0.0  # keys do not share
    clock.now += 60  # never more than one second's allowance is saved up
    assert sum(buckets.take("k", 50) == 0.0 for _ in range(60)) == 50


@pytest.fixture
def limited(settings: Settings) -> Iterator[Chain]:
    settings = msgspec.structs.replace(settings, rate_limit_pos=5, rate_limit_other=8)
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        chain.pos()  # issue the keys before counting
        chain.service()
        yield chain


def test_a_pos_key_beyond_its_rate_gets_429_with_retry_after_and_others_go_on(
    limited: Chain,
) -> None:
    client, pos = limited.client, limited.pos()
    answers = [client.get("/v1/members/NOPE", headers=pos) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert statuses.count(404) >= 5 and 429 in statuses, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    # another key, and the public endpoints, are not held back by this one
    assert client.get("/v1/members/NOPE", headers=limited.service()).status_code == 404
    assert client.get("/health/live").status_code == 200
    time.sleep(0.5)  # two tokens back at 5 a second
    assert client.get("/v1/members/NOPE", headers=pos).status_code == 404


def test_a_rate_of_zero_is_no_limit(settings: Settings) -> None:
    settings = msgspec.structs.replace(settings, rate_limit_pos=0, rate_limit_other=0)
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        pos = chain.pos()
        statuses = {client.get("/v1/members/NOPE", headers=pos).status_code for _ in range(300)}
    assert statuses == {404}


def test_the_limits_come_from_the_environment() -> None:
    env = {"LEDGER_MASTER_KEY": "11" * 32}
    defaults = Settings.from_env(env)
    assert (defaults.rate_limit_pos, defaults.rate_limit_other) == (50, 200)
    off = Settings.from_env(env | {"LEDGER_RATE_LIMIT_POS": "0", "LEDGER_RATE_LIMIT_OTHER": "7"})
    assert (off.rate_limit_pos, off.rate_limit_other) == (0, 7)
    with pytest.raises(ConfigError):
        Settings.from_env(env | {"LEDGER_RATE_LIMIT_POS": "-1"})
