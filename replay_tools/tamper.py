"""`ledger verify`'s tamper checks: every aggregate's hash chain, and every closed month's digest.

The chains are walked aggregate by aggregate, in version order, straight from the events
table (its primary key is that order), streaming: memory stays constant however long the log.
Only the stored bytes are hashed (`ledger.sealing`), nothing decoded. The digests of closed
months are recomputed from the settlement events, in log order, as the close computed them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.application import Ledger
from ledger.domain import settlement
from ledger.infrastructure import hashchain

PAGE_ROWS = 5_000
Row = tuple[int, UUID | str, int, str, bytes]  # position, aggregate id, version, topic, state


class BrokenLink(msgspec.Struct, frozen=True, kw_only=True):
    aggregate_id: str
    version: int
    position: int  # the stored event's notification id
    reason: str

    def line(self) -> str:
        return (
            f"chain: {self.aggregate_id} v{self.version} at position {self.position}: {self.reason}"
        )


class ChainReport(msgspec.Struct, kw_only=True):
    events: int = 0
    aggregates: int = 0
    broken: int = 0  # aggregates with a broken link (only the first link of each is named)
    first: list[BrokenLink] = msgspec.field(default_factory=list)


def stored_rows(ledger: Ledger) -> Iterator[Row]:
    """Every stored event, ordered by aggregate and version, read with a server-side cursor."""
    recorder = ledger.core.recorder
    columns = "originator_id, originator_version, topic, state"
    if isinstance(recorder, PostgresApplicationRecorder):
        query = sql.SQL(
            "SELECT notification_id, {} FROM {} ORDER BY originator_id, originator_version"
        )
        table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        with (
            recorder.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor("verify_chains", row_factory=tuple_row) as cursor,
        ):
            cursor.itersize = PAGE_ROWS
            cursor.execute(query.format(sql.SQL(columns), table))
            yield from cursor
    elif isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as wrapped:
            lite = wrapped.sqlite_cursor
            lite.execute(
                f"SELECT rowid, {columns} FROM {recorder.events_table_name} "  # noqa: S608 - the recorder's own table name
                "ORDER BY originator_id, originator_version"
            )
            while rows := lite.fetchmany(PAGE_ROWS):
                yield from rows
    else:
        raise TypeError(f"cannot walk the chains of {type(recorder).__name__}")


def plain(ledger: Ledger) -> Callable[[bytes], bytes]:
    """The stored state as the mapper encoded it (deciphered and decompressed if configured)."""
    cipher, compressor = ledger.core.mapper.cipher, ledger.core.mapper.compressor
    if cipher is None and compressor is None:
        return lambda state: state

    def decoded(state: bytes) -> bytes:
        if cipher is not None:
            state = cipher.decrypt(state)
        if compressor is not None:
            state = compressor.decompress(state)
        return state

    return decoded


def check_chains(
    rows: Iterable[Row], decode: Callable[[bytes], bytes], shown: int = 10, progress: Any = None
) -> ChainReport:
    """Walk `rows` (grouped by aggregate, in version order); the first broken link of each
    aggregate is counted, the first `shown` of them named."""
    report = ChainReport()
    current: UUID | str | None = None
    expected, prev, skipping = 1, hashchain.GENESIS, False
    for position, aggregate_id, version, topic, state in rows:
        report.events += 1
        if aggregate_id != current:
            current, expected, prev, skipping = aggregate_id, 1, hashchain.GENESIS, False
            report.aggregates += 1
        if skipping:
            continue
        reason = None
        if version != expected:
            reason = f"version {expected} is missing" if version > expected else "version repeats"
        else:
            try:
                prev = hashchain.check(prev, aggregate_id, version, topic, decode(bytes(state)))
            except hashchain.ChainBroken as e:
                reason = str(e)
        if reason is not None:
            skipping = True
            report.broken += 1
            if len(report.first) < shown:
                report.first.append(
                    BrokenLink(
                        aggregate_id=str(UUID(str(aggregate_id))),
                        version=version,
                        position=position,
                        reason=reason,
                    )
                )
        expected += 1
        if progress is not None and report.events % 10_000 == 0:
            progress(report.events)
    return report


def check_digests(ledger: Ledger) -> tuple[int, list[str]]:
    """How many closed months were checked, and what does not match: a month whose recorded
    digest differs from one recomputed from the log, or a closed month without a digest."""
    digests = settlement.MonthDigests()
    recorded: dict[str, settlement.PeriodDigested] = {}
    for event in ledger.settlement.log():
        digests.add(event)
        if isinstance(event, settlement.PeriodDigested):
            recorded[event.period] = event
    found: list[str] = []
    for period in sorted(digests.closed):
        kept = recorded.get(period)
        computed = digests.of(period, kept.scheme if kept else settlement.DIGEST_SCHEME)
        if kept is None or computed is None:
            found.append(f"digest: {period} is closed without a digest (close it again)")
        elif (kept.digest, kept.events) != (computed.digest, computed.events):
            found.append(
                f"digest: {period} recorded {kept.digest} over {kept.events} events, "
                f"the log gives {computed.digest} over {computed.events}"
            )
    return len(digests.closed), found
