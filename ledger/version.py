"""The version of the running code: the installed package's, as pyproject.toml names it (one
source for `ledger --version`, `/health` and the OpenAPI document)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "pharmacy-ledger"


def package_version() -> str:
    """`0.1.0` when installed (`make setup` installs it, editable); `0+unknown` when the code
    runs from a tree that was never installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


VERSION = package_version()
