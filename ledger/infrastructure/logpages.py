"""Reading the log in pages: the one loop over `select_notifications` that everything shares.

The expiry run's fallback scan, the key list, the settlement digests, the projections' replay,
the export and the what-if replay all walk the log in notification order a page at a time, so
memory stays flat however long the log is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from eventsourcing.persistence import ApplicationRecorder, Notification

PAGE = 1_000


def pages(
    recorder: ApplicationRecorder,
    start: int = 1,
    stop: int | None = None,
    topics: Sequence[str] = (),
    size: int = PAGE,
) -> Iterator[Sequence[Notification]]:
    """The log's notifications from position `start` to `stop` (inclusive; None: the head as
    each page is read), of the given topics (all when empty), a page at a time."""
    while stop is None or start <= stop:
        page = recorder.select_notifications(
            start, size, stop=stop, topics=topics, inclusive_of_start=True
        )
        if not page:
            return
        yield page
        if len(page) < size:
            return
        start = page[-1].id + 1


def notifications(
    recorder: ApplicationRecorder,
    start: int = 1,
    stop: int | None = None,
    topics: Sequence[str] = (),
    size: int = PAGE,
) -> Iterator[Notification]:
    """`pages()` one notification at a time."""
    for page in pages(recorder, start, stop, topics, size):
        yield from page
