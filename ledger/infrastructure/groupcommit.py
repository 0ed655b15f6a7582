"""Group commit: the events of concurrent commands saved together in one transaction.

On PostgreSQL every save takes an exclusive lock on the events table until it commits (so that
notification ids appear in commit order), so one transaction per sale caps a process at one
commit's latency per sale. Commands therefore decide their events as before and hand them to
one committer thread, which saves everything waiting in one transaction (up to MAX_BATCH
commands). If that transaction clashes (two commands decided from the same version of one
member, or a receipt posted twice), each command's events are saved on their own instead, so
each command gets exactly its own outcome: saved, or the clash it must retry or report.

A command's identity-index rows (`IdentityChange`, an enrolment's or an erasure's) travel with
its events: in a batch, everyone's rows go into the one transaction; on a clash, each command's
rows go with its own events again, so a second enrolment of one ID number fails alone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from eventsourcing.persistence import IntegrityError

from ledger.domain.model import DomainEvent
from ledger.infrastructure.identityindex import IdentityChange

MAX_BATCH = 100
Save = Callable[..., object]
Item = tuple[Sequence[DomainEvent], IdentityChange | None, Future[None]]


class GroupCommit:
    def __init__(self, save: Save) -> None:
        self._save = save
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def save(self, events: Sequence[DomainEvent], identity: IdentityChange | None = None) -> None:
        """Save `events` (and `identity`'s rows) atomically, with others'; raises what saving
        them alone would."""
        done: Future[None] = Future()
        self._start()
        self._queue.put((events, identity, done))
        done.result()

    def _write(self, events: Sequence[DomainEvent], identity: IdentityChange | None) -> None:
        if identity is None:
            self._save(*events)
        else:
            self._save(*events, identity=identity)

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="group-commit", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[Item]) -> None:
        if len(batch) > 1:
            try:
                self._write(
                    [event for events, _, _ in batch for event in events],
                    IdentityChange.merged(identity for _, identity, _ in batch),
                )
            except IntegrityError:
                pass  # somebody's clash: find whose, saving each on its own
            except BaseException as e:
                for _, _, done in batch:
                    done.set_exception(e)
                return
            else:
                for _, _, done in batch:
                    done.set_result(None)
                return
        for events, identity, done in batch:
            try:
                self._write(events, identity)
            except BaseException as e:
                done.set_exception(e)
            else:
                done.set_result(None)
