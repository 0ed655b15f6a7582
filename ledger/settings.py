"""Configuration from the environment (LEDGER_*), read once at start."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ledger.domain.apikey import new_key
from ledger.infrastructure.persistence import (
    DEFAULT_DATABASE_URL,
    PostgresTuning,
    eventsourcing_env,
)


class ConfigError(ValueError):
    """A LEDGER_* variable is missing or wrong: the service refuses to start."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    admin_key: str | None = None
    timezone: str = "Asia/Shanghai"
    master_key: bytes = b""
    max_body_bytes: int = 256 * 1024
    member_cache_size: int = 10_000
    member_cache_mb: int = 64  # estimated bytes of cached aggregates (D68)
    expire_daily: bool = False
    run_projections: bool = True  # follow the log in this process (off: `ledger project` does)
    ready_max_lag: int = 10_000  # /health/ready: 503 while a view lags the log by more events
    rate_limit_pos: int = 50  # requests per second per POS key (0: no limit)
    rate_limit_other: int = 200  # requests per second per other key (0: no limit)
    max_connections: int = 1_000  # open connections per process; beyond: 503 at once
    header_timeout_seconds: float = 10.0  # a connection's request headers complete within this
    postgres: PostgresTuning = PostgresTuning()
    lease_seconds: float = 1.0  # how often a standby process asks for a projection's lock

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return read_environment(env).settings()


def _var(name: str, default: Any) -> Any:
    return msgspec.field(default=default, name=name)


Count = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class Environment(msgspec.Struct, frozen=True, kw_only=True):
    """Every LEDGER_* variable the service reads, typed: decoding the environment into this
    (msgspec, lax: text to numbers) is the validation, and a wrong value names its variable.
    README's configuration table says what each one does."""

    database_url: str = _var("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL)
    env: Literal["development", "production"] = _var("LEDGER_ENV", "development")
    admin_key: str = _var("LEDGER_ADMIN_KEY", "")
    timezone: str = _var("LEDGER_TIMEZONE", "Asia/Shanghai")
    master_key: str = _var("LEDGER_MASTER_KEY", "")
    master_key_file: str = _var("LEDGER_MASTER_KEY_FILE", ".ledger-master.key")
    max_body_bytes: Positive = _var("LEDGER_MAX_BODY_BYTES", 256 * 1024)
    member_cache_size: Count = _var("LEDGER_MEMBER_CACHE_SIZE", 10_000)
    member_cache_mb: Positive = _var("LEDGER_MEMBER_CACHE_MB", 64)
    expire_daily: bool | None = _var("LEDGER_EXPIRE_DAILY", None)
    projections: Literal["inline", "off"] = _var("LEDGER_PROJECTIONS", "inline")
    ready_max_lag: Count = _var("LEDGER_READY_MAX_LAG", 10_000)
    rate_limit_pos: Count = _var("LEDGER_RATE_LIMIT_POS", 50)
    rate_limit_other: Count = _var("LEDGER_RATE_LIMIT_OTHER", 200)
    max_connections: Count = _var("LEDGER_MAX_CONNECTIONS", 1_000)
    header_timeout: Seconds = _var("LEDGER_HEADER_TIMEOUT", 10.0)
    host: str = _var("LEDGER_HOST", "127.0.0.1")
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = _var("LEDGER_PORT", 8000)
    workers: Positive = _var("LEDGER_WORKERS", 1)
    pg_connect_timeout: Positive = _var("LEDGER_PG_CONNECT_TIMEOUT", 2)
    pg_lock_timeout: Positive = _var("LEDGER_PG_LOCK_TIMEOUT", 5)
    pg_pool_size: Positive = _var("LEDGER_PG_POOL_SIZE", 2)
    pg_max_overflow: Count = _var("LEDGER_PG_MAX_OVERFLOW", 18)
    start_timeout: Annotated[float, msgspec.Meta(ge=0)] = _var("LEDGER_START_TIMEOUT", 10.0)
    lease: Seconds = _var("LEDGER_LEASE_SECONDS", 1.0)

    def settings(self) -> Settings:
        """The service's settings (the master key from its file outside production)."""
        expire_daily = self.env == "production" if self.expire_daily is None else self.expire_daily
        return Settings(
            database_url=self.database_url,
            admin_key=self.admin_key or None,
            timezone=self.timezone,
            master_key=self._master_key(),
            max_body_bytes=self.max_body_bytes,
            member_cache_size=self.member_cache_size,
            member_cache_mb=self.member_cache_mb,
            expire_daily=expire_daily,
            run_projections=self.projections == "inline",
            ready_max_lag=self.ready_max_lag,
            rate_limit_pos=self.rate_limit_pos,
            rate_limit_other=self.rate_limit_other,
            max_connections=self.max_connections,
            header_timeout_seconds=self.header_timeout,
            postgres=PostgresTuning(
                connect_timeout_seconds=self.pg_connect_timeout,
                lock_timeout_seconds=self.pg_lock_timeout,
                pool_size=self.pg_pool_size,
                max_overflow=self.pg_max_overflow,
            ),
            lease_seconds=self.lease,
        )

    def _master_key(self) -> bytes:
        """`LEDGER_MASTER_KEY` (hex, 32 bytes); outside production, else a key file generated
        once beside the service (the embedded default's convenience, not for real data)."""
        if self.master_key:
            return parse_master_key(self.master_key, "LEDGER_MASTER_KEY")
        if self.env == "production":
            raise ConfigError(
                "LEDGER_MASTER_KEY is required when LEDGER_ENV=production: 64 hex digits "
                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`), kept in your "
                "secret store; it wraps every member's key, so losing it loses all personal data"
            )
        path = Path(self.master_key_file)
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return bytes.fromhex(path.read_text().strip())


FIELD_TYPES = {f.encode_name: f.type for f in msgspec.structs.fields(Environment)}
VARIABLES = set(FIELD_TYPES)
# Spelled as people write them; msgspec's own booleans are true/false/1/0.
BOOLEANS = {"yes": "true", "on": "true", "no": "false", "off": "false"}


def read_environment(env: Mapping[str, str] | None = None) -> Environment:
    """The LEDGER_* variables of `env` (default: the process's), checked; ConfigError names the
    first wrong one in one line. No side effect (no key file): `ledger --help` calls it too."""
    source = os.environ if env is None else env
    raw: dict[str, str] = {}
    for name in VARIABLES:
        value = source.get(name, "").strip()
        if value:  # an empty variable means its default, as unset
            raw[name] = value
    for name in ("LEDGER_ENV", "LEDGER_PROJECTIONS", "LEDGER_EXPIRE_DAILY"):
        if name in raw:
            raw[name] = raw[name].lower()
    if "LEDGER_EXPIRE_DAILY" in raw:
        raw["LEDGER_EXPIRE_DAILY"] = BOOLEANS.get(
            raw["LEDGER_EXPIRE_DAILY"], raw["LEDGER_EXPIRE_DAILY"]
        )
    try:
        environment = msgspec.convert(raw, Environment, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(_one_line(str(e), raw)) from None
    try:
        eventsourcing_env(environment.database_url)
    except ValueError as e:
        raise ConfigError("LEDGER_DATABASE_URL: " + " ".join(str(e).split())) from None
    if environment.master_key:
        parse_master_key(environment.master_key, "LEDGER_MASTER_KEY")
    try:
        ZoneInfo(environment.timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"LEDGER_TIMEZONE: unknown time zone {environment.timezone!r}") from e
    return environment


def _one_line(message: str, raw: Mapping[str, str]) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.LEDGER_PORT`" as "LEDGER_PORT='abc':
    expected a whole number from 1 to 65535" (a key's value is not shown)."""
    _, _, where = message.rpartition(" - at `$.")
    name = where.rstrip("`")
    if name not in FIELD_TYPES:
        return message
    shown = "" if "KEY" in name else f"={raw.get(name, '')!r}"
    return f"{name}{shown}: expected {_expected(FIELD_TYPES[name])}"


def _expected(annotation: Any) -> str:
    """What a variable of this type takes, in words."""
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(get_args(annotation))
    if annotation == (bool | None):
        return "1/0, true/false, yes/no or on/off"
    words = ""
    if get_origin(annotation) is Annotated:
        annotation, meta = get_args(annotation)
        low = meta.ge if meta.ge is not None else meta.gt
        if meta.le is not None:
            words = f" from {low} to {meta.le}"
        elif low is not None:
            words = f" of {low} or more" if meta.ge is not None else f" above {low}"
    return ("a whole number" if annotation is int else "a number") + words


def parse_master_key(text: str, variable: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{variable} must be 64 hex digits (32 bytes)")
    return key


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
