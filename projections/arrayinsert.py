"""Many rows of one view INSERT as one statement: PostgreSQL's `INSERT ... SELECT ... FROM
unnest(<one array per parameter>)` in place of `executemany`'s statement per row.

`array_insert()` turns a view's single-row `INSERT INTO {table} (...) VALUES (...)
[ON CONFLICT ...]` into its `ArrayInsert` (or None when the statement is not one it knows: it
then runs row by row), and `ArrayInsert.chunks()` cuts the rows into the arrays to send. The
`Cursor` of `projections.sqlview` uses it for statements buffered ARRAY_MIN_ROWS times or more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

ARRAY_ROWS = 5_000  # rows per array INSERT
ARRAY_MIN_ROWS = 8  # fewer rows go with executemany
_INSERT = re.compile(
    r"^INSERT INTO \{(?P<table>\w+)\} \((?P<columns>[^()]*)\) VALUES \((?P<values>[^()]*)\)"
    r"(?P<tail>(?: ON CONFLICT \((?P<key>[^()]*)\) DO (?:NOTHING|UPDATE SET (?P<set>.*)))?)$",
    re.DOTALL,
)
_SET_FROM_EXCLUDED = re.compile(r"^(\w+) = excluded\.(\w+)$")


class ArrayInsert:
    """One single-row `INSERT INTO {t} (...) VALUES (...) [ON CONFLICT ...]` of a view, run for
    many rows as `INSERT ... SELECT ... FROM unnest(<one array per parameter>)`: one statement
    (prepared once) per chunk instead of one per row, each of which PostgreSQL plans and runs
    on its own (what `executemany` sends); the effect is the statement's, row after row.

    A multi-row `ON CONFLICT DO UPDATE` may not touch one key twice, so the rows are cut into
    chunks in which no key repeats (chunk after chunk is row after row). When the update sets
    every other column from `excluded` (the row replaces what was there: running balances,
    settlement rows), only each key's last row matters and the earlier ones are left out."""

    def __init__(self, sql: str, key: list[int] | None, last_wins: bool) -> None:
        self.sql = sql  # with one `%b` per parameter, each an array
        self.key = key  # the parameters holding the conflict key (None: a plain INSERT)
        self.last_wins = last_wins

    def chunks(self, rows: list[tuple[Any, ...]]) -> Iterator[list[list[Any]]]:
        """Each chunk's parameters: one list per parameter, in the order they must run."""
        key = self.key
        if key is not None and self.last_wins:
            rows = list({tuple(r[i] for i in key): r for r in rows}.values())
        chunk: list[tuple[Any, ...]] = []
        seen: set[tuple[Any, ...]] = set()
        for r in rows:
            if key is not None:
                k = tuple(r[i] for i in key)
                if k in seen:
                    yield [list(c) for c in zip(*chunk, strict=True)]
                    chunk, seen = [], set()
                seen.add(k)
            chunk.append(r)
            if len(chunk) >= ARRAY_ROWS:
                yield [list(c) for c in zip(*chunk, strict=True)]
                chunk, seen = [], set()
        if chunk:
            yield [list(c) for c in zip(*chunk, strict=True)]


@lru_cache(maxsize=256)
def array_insert(statement: str, types: tuple[tuple[str, str], ...]) -> ArrayInsert | None:
    """The array form of a single-row INSERT into a table with these column `types`, or None
    when the statement is not one this knows (it then runs row by row)."""
    found = _INSERT.match(statement.strip())
    if found is None:
        return None
    column_types = dict(types)
    columns = [c.strip() for c in found["columns"].split(",")]
    values = [v.strip() for v in found["values"].split(",")]
    if len(columns) != len(values) or any(c not in column_types for c in columns):
        return None
    params = [c for c, v in zip(columns, values, strict=True) if v == "?"]
    items = []
    for column, value in zip(columns, values, strict=True):
        items.append(f"u.p{params.index(column)}" if value == "?" else value)
    # binary parameters (`%b`): a text array would escape every string element in Python
    arrays = ", ".join(f"%b::{column_types[c]}[]" for c in params)
    names = ", ".join(f"p{n}" for n in range(len(params)))
    sql = (
        f"INSERT INTO {{{found['table']}}} ({found['columns']}) SELECT {', '.join(items)} "
        f"FROM unnest({arrays}) AS u({names}){found['tail']}"
    )
    if found["key"] is None:
        return ArrayInsert(sql, None, False)
    key_columns = [c.strip() for c in found["key"].split(",")]
    key = [params.index(c) for c in key_columns if c in params]
    assignments = [a.strip() for a in found["set"].split(",")] if found["set"] else []
    replaced = set(key_columns)
    for assignment in assignments:
        pair = _SET_FROM_EXCLUDED.match(assignment)
        if pair is None or pair[1] != pair[2]:
            return ArrayInsert(sql, key, False)
        replaced.add(pair[1])
    return ArrayInsert(sql, key, bool(assignments) and replaced == set(columns))


def insert_table(statement: str) -> str | None:
    """The `{table}` a single-row INSERT of the form `array_insert()` knows writes, or None."""
    found = _INSERT.match(statement.strip())
    return found["table"] if found else None
