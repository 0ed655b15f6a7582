"""Progress for long replay runs: a bar on a terminal (rich), silence otherwise, and one
summary line at the end on stdout, whatever the output is."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Tracker:
    """Counts work done; draws it when stderr is a terminal."""

    def __init__(self, progress: Progress | None, description: str, total: int | None) -> None:
        self._progress = progress
        self._task = progress.add_task(description, total=total) if progress else None
        self.done = 0
        self.started = time.perf_counter()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.done)

    def total(self, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Tracker]:
    if not sys.stderr.isatty():
        yield Tracker(None, description, total)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        yield Tracker(bar, description, total)


def summary(line: str) -> None:
    """The one line a run ends with (stdout, so scripts can read it)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
