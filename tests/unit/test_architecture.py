"""The house rules, read from the code itself: imports point down (docs/ARCHITECTURE.md), modules
and functions stay small, and every stored event class has a stable topic."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import ledger
from ledger.domain.model import DomainEvent
from ledger.infrastructure.topics import STORED

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "projections", "api", "replay_tools", "entry")
MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 60

# What each part may import (first match of the importing module's dotted name wins).
ALLOWED: list[tuple[str, set[str]]] = [
    ("ledger.domain", {"ledger.domain", "ledger.policies"}),
    ("ledger.policies", {"ledger.domain", "ledger.policies"}),
    ("ledger.infrastructure", {"ledger.domain", "ledger.policies", "ledger.infrastructure"}),
    (
        "ledger.services",
        {
            "ledger.domain",
            "ledger.policies",
            "ledger.infrastructure",
            "ledger.services",
            "ledger.settings",
        },
    ),
    ("ledger", {"ledger"}),
    ("projections", {"ledger", "projections"}),
    ("api", {"ledger", "projections", "api"}),
    ("replay_tools", {"ledger", "projections", "replay_tools"}),
    ("entry", {"ledger", "projections", "api", "replay_tools", "entry"}),
]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _imports(path: Path) -> list[str]:
    """The project modules `path` imports (absolute imports of our packages)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return [n for n in names if n.split(".")[0] in PACKAGES]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_imports_point_only_down() -> None:
    wrong = []
    for name, path in _modules():
        allowed = next(rule for prefix, rule in ALLOWED if _within(name, prefix))
        wrong += [
            f"{name} imports {imported}"
            for imported in _imports(path)
            if not any(_within(imported, a) for a in allowed)
        ]
    assert wrong == []


def test_modules_and_functions_are_small() -> None:
    too_long = []
    for name, path in _modules():
        source = path.read_text()
        if source.count("\n") > MODULE_LINES_MAX:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > FUNCTION_LINES_MAX:
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert too_long == []


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_event_class_has_a_stable_topic() -> None:
    for module in pkgutil.walk_packages(ledger.__path__, "ledger."):
        if module.name != "ledger.__main__":
            importlib.import_module(module.name)
    events = {c for c in _subclasses(DomainEvent) if c.__module__.startswith("ledger.")}
    bases = {c for c in events if _subclasses(c) & events}  # MemberEvent: never stored itself
    assert sorted(c.__name__ for c in events - bases - set(STORED.values())) == []
