"""Configuration from the environment (LEDGER_*), read once at start."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ledger.domain.apikey import new_key
from ledger.infrastructure.persistence import DEFAULT_DATABASE_URL


class ConfigError(ValueError):
    """A LEDGER_* variable is missing or wrong: the service refuses to start."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    admin_key: str | None = None
    timezone: str = "Asia/Shanghai"
    master_key: bytes = b""
    max_body_bytes: int = 256 * 1024
    member_cache_size: int = 10_000
    expire_daily: bool = False
    run_projections: bool = True  # follow the log in this process (off: `ledger project` does)
    ready_max_lag: int = 10_000  # /health/ready: 503 while a view lags the log by more events
    rate_limit_pos: int = 50  # requests per second per POS key (0: no limit)
    rate_limit_other: int = 200  # requests per second per other key (0: no limit)
    max_connections: int = 1_000  # open connections per process; beyond: 503 at once
    header_timeout_seconds: float = 10.0  # a connection's request headers complete within this

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        timezone = env.get("LEDGER_TIMEZONE", "Asia/Shanghai")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ConfigError(f"LEDGER_TIMEZONE: unknown time zone {timezone!r}") from e
        return cls(
            database_url=env.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL),
            admin_key=env.get("LEDGER_ADMIN_KEY") or None,
            timezone=timezone,
            master_key=_master_key(env),
            max_body_bytes=int(env.get("LEDGER_MAX_BODY_BYTES", 256 * 1024)),
            member_cache_size=int(env.get("LEDGER_MEMBER_CACHE_SIZE", 10_000)),
            expire_daily=_expire_daily(env),
            run_projections=env.get("LEDGER_PROJECTIONS", "inline").lower() != "off",
            ready_max_lag=_count(env, "LEDGER_READY_MAX_LAG", 10_000),
            rate_limit_pos=_count(env, "LEDGER_RATE_LIMIT_POS", 50),
            rate_limit_other=_count(env, "LEDGER_RATE_LIMIT_OTHER", 200),
            max_connections=_count(env, "LEDGER_MAX_CONNECTIONS", 1_000),
            header_timeout_seconds=float(env.get("LEDGER_HEADER_TIMEOUT", 10)),
        )


def _count(env: dict[str, str], variable: str, default: int) -> int:
    try:
        value = int(env.get(variable, default))
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{variable} must be a whole number, 0 or more")
    return value


def _expire_daily(env: dict[str, str]) -> bool:
    """LEDGER_EXPIRE_DAILY if set; otherwise on in production, off elsewhere (SPEC 2.5)."""
    value = env.get("LEDGER_EXPIRE_DAILY", "").strip().lower()
    if value:
        return value in ("1", "true", "yes", "on")
    return env.get("LEDGER_ENV", "development").lower() == "production"


def parse_master_key(text: str, variable: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{variable} must be 64 hex digits (32 bytes)")
    return key


def _master_key(env: dict[str, str]) -> bytes:
    """`LEDGER_MASTER_KEY` (hex, 32 bytes); outside production, else a key file generated once
    beside the service (the embedded default's convenience, not a place for real data)."""
    if env.get("LEDGER_MASTER_KEY"):
        return parse_master_key(env["LEDGER_MASTER_KEY"], "LEDGER_MASTER_KEY")
    if env.get("LEDGER_ENV", "development").lower() == "production":
        raise ConfigError(
            "LEDGER_MASTER_KEY is required when LEDGER_ENV=production: 64 hex digits "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`), kept in your "
            "secret store; it wraps every member's key, so losing it loses all personal data"
        )
    path = Path(env.get("LEDGER_MASTER_KEY_FILE", ".ledger-master.key"))
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


ADMIN_KEY_FILE = ".ledger-admin.key"


def admin_key_file(env: Mapping[str, str]) -> Path:
    """Where the development admin key is kept: `LEDGER_ADMIN_KEY_FILE`, else
    `.ledger-admin.key` beside the SQLite file (in the working directory for PostgreSQL)."""
    if env.get("LEDGER_ADMIN_KEY_FILE"):
        return Path(env["LEDGER_ADMIN_KEY_FILE"])
    url = env.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL)
    sqlite = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ":memory:"
    return (Path() if sqlite == ":memory:" else Path(sqlite).parent) / ADMIN_KEY_FILE


def development_admin_key(env: Mapping[str, str]) -> tuple[str, Path] | None:
    """The admin key `ledger serve` registers when `LEDGER_ADMIN_KEY` is unset, outside
    production: generated once into `admin_key_file(env)` (mode 0600), read from it on later
    starts. None when `LEDGER_ADMIN_KEY` is set or `LEDGER_ENV=production` (which generates no
    key: its first admin key comes from `LEDGER_ADMIN_KEY`)."""
    if env.get("LEDGER_ADMIN_KEY") or env.get("LEDGER_ENV", "").lower() == "production":
        return None
    path = admin_key_file(env)
    with contextlib.suppress(FileExistsError):  # created by an earlier start
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(new_key() + "\n")
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path} is empty: delete it, and a new admin key is generated")
    return key, path
