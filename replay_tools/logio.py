"""`ledger export` / `ledger import`: the whole event log as JSON Lines, round-trip exact.

The file is one header line, then one line per stored event in notification order:

    {"format":"pharmacy-ledger-log","version":1,"application":"Ledger","count":3}␠␠␠…
    {"originator_id":"…","originator_version":1,"topic":"ledger.member:MemberEnrolled","state":"{…}"}

`state` is the stored state as text when it is UTF-8 (the msgspec mapper stores JSON), else
`state_b64` holds it as base64 (a compressed or encrypted store); either way the bytes come back
exactly. Notification ids are not written: a store's ids may have gaps (PostgreSQL sequences
skip on a rolled-back insert), and an import gives them out afresh in the same order. The header
is padded with spaces to a fixed width so that the count can be written once the events are
streamed (JSON ignores the padding). Both directions stream page by page: memory stays flat.
Snapshots are not exported: they are a cache, and members rebuild from their events.

Member keys are not events: they go to a companion file `FILE.jsonl.keys` (mode 0600), still
wrapped by the master key, so an import into a store run with the same master key can read the
personal data; an erased member has no key, so their data stays erased in the copy. An import
checks the whole file first, then refuses a target that has any event; nothing else should write
to the target while it runs (stop the service), or its events would interleave with the import.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger, open_ledger
from ledger.infrastructure.logpages import pages
from ledger.settings import Settings
from replay_tools.progress import Tracker, progress, summary

FORMAT = "pharmacy-ledger-log"
FORMAT_VERSION = 1
HEADER_BYTES = 160  # the header line's width before its newline, padding included
PAGE_EVENTS = 1_000  # notifications read per query on export
BATCH_EVENTS = 1_000  # events inserted per transaction on import


class LogError(Exception):
    """A log file or a target store that an import or export cannot use."""


class LogHeader(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    version: int
    application: str
    count: int


class MemberKey(msgspec.Struct, frozen=True, kw_only=True):
    member: UUID
    wrapped: bytes  # as the key table holds it: wrapped by the master key


class LogEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    originator_id: UUID
    originator_version: int
    topic: str
    state: str | None = None  # the stored bytes, when they are UTF-8 text
    state_b64: bytes | None = None  # otherwise (msgspec writes bytes as base64)

    @classmethod
    def of(cls, stored: StoredEvent) -> LogEvent:
        try:
            text, raw = stored.state.decode("utf-8"), None
        except UnicodeDecodeError:
            text, raw = None, stored.state
        originator_id = stored.originator_id
        return cls(
            originator_id=originator_id if isinstance(originator_id, UUID) else UUID(originator_id),
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=text,
            state_b64=raw,
        )

    def stored(self) -> StoredEvent:
        if self.state is not None and self.state_b64 is None:
            state = self.state.encode("utf-8")
        elif self.state is None and self.state_b64 is not None:
            state = self.state_b64
        else:
            what = f"event {self.originator_id} v{self.originator_version}"
            raise LogError(f"{what}: exactly one of state and state_b64 is required")
        return StoredEvent(
            originator_id=self.originator_id,
            originator_version=self.originator_version,
            topic=self.topic,
            state=state,
        )


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(LogEvent)
_header_decoder = msgspec.json.Decoder(LogHeader)


def _header_line(header: LogHeader) -> bytes:
    encoded = _encoder.encode(header)
    if len(encoded) > HEADER_BYTES:
        raise LogError("the header outgrew its fixed width")
    return encoded + b" " * (HEADER_BYTES - len(encoded)) + b"\n"


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def export_log(ledger: Ledger, path: str | Path, tracker: Tracker | None = None) -> int:
    """Write every event recorded so far to `path`; return how many. The file appears only
    when complete (written beside it, then renamed)."""
    path = Path(path)
    stop = ledger.core.log_position()  # later writes are not part of this export
    if tracker is not None:
        tracker.total(stop)
    partial = _partial(path)
    try:
        # every purchase is health data: the file is its owner's alone, from its first byte
        with os.fdopen(_owner_only(partial), "wb") as out:
            count = _write_events(ledger, out, stop, tracker)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    export_keys(ledger, keys_path(path))
    return count


def _owner_only(path: Path) -> int:
    """A file descriptor of `path`, emptied, readable and writable by its owner only (0600)."""
    path.unlink(missing_ok=True)  # a leftover file would keep its own, wider mode
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def keys_path(path: Path) -> Path:
    return path.with_name(path.name + ".keys")


def export_keys(ledger: Ledger, path: Path) -> int:
    """Write every live member key, wrapped as stored, to `path` (readable by its owner only)."""
    partial = _partial(path)
    count = 0
    with os.fdopen(_owner_only(partial), "wb") as out:
        for member in ledger.core.keys.members():
            wrapped = ledger.core.keys.get(member)
            if isinstance(wrapped, bytes):
                out.write(_encoder.encode(MemberKey(member=member, wrapped=wrapped)) + b"\n")
                count += 1
    os.replace(partial, path)
    return count


def import_keys(ledger: Ledger, path: Path) -> int:
    decoder = msgspec.json.Decoder(MemberKey)
    count = 0
    with path.open("rb") as keys:
        for line in keys:
            key = decoder.decode(line)
            ledger.core.keys.create(key.member, key.wrapped)
            count += 1
    return count


def _write_events(ledger: Ledger, out: IO[bytes], stop: int, tracker: Tracker | None) -> int:
    """Notifications 1..stop, page by page, after a placeholder header; then the real header."""
    out.write(
        _header_line(LogHeader(format=FORMAT, version=FORMAT_VERSION, application="", count=0))
    )
    count = 0
    for page in pages(ledger.core.recorder, stop=stop, size=PAGE_EVENTS):
        out.write(_encoder.encode_lines([LogEvent.of(n) for n in page]))
        count += len(page)
        if tracker is not None:
            tracker.advance(page[-1].id - tracker.done)
    out.seek(0)
    header = LogHeader(
        format=FORMAT, version=FORMAT_VERSION, application=ledger.core.name, count=count
    )
    out.write(_header_line(header))
    return count


def read_header(path: str | Path) -> LogHeader:
    """The header of a log file, checked to be one this version can import."""
    with Path(path).open("rb") as log:
        first = log.readline()
    try:
        header = _header_decoder.decode(first)
    except msgspec.DecodeError as e:
        raise LogError(f"{path}: not a ledger log (bad header: {e})") from e
    if header.format != FORMAT or header.version != FORMAT_VERSION:
        what = f"format {header.format!r} v{header.version}"
        raise LogError(f"{path}: {what} is not {FORMAT} v{FORMAT_VERSION}")
    return header


def _events(log: IO[bytes], path: Path) -> Iterator[LogEvent]:
    for line_no, line in enumerate(log, start=2):
        try:
            yield _event_decoder.decode(line)
        except msgspec.DecodeError as e:
            raise LogError(f"{path}:{line_no}: {e}") from e


def _check_file(path: Path, header: LogHeader) -> None:
    """Read the whole file once before writing anything: a truncated or damaged file is refused."""
    with path.open("rb") as log:
        log.readline()
        count = 0
        for event in _events(log, path):
            event.stored()
            count += 1
    if count != header.count:
        raise LogError(f"{path}: the header promises {header.count} events, the file has {count}")


def import_log(ledger: Ledger, path: str | Path, tracker: Tracker | None = None) -> int:
    """Insert a log file's events into an empty store, in file order; return how many."""
    path = Path(path)
    header = read_header(path)
    if header.application != ledger.core.name:
        raise LogError(f"{path}: a log of {header.application!r}, not of {ledger.core.name!r}")
    if ledger.core.recorder.max_notification_id() is not None:
        raise LogError("the target event log is not empty: import only into an empty store")
    _check_file(path, header)
    if tracker is not None:
        tracker.total(header.count)
    count = 0
    with path.open("rb") as log:
        log.readline()
        batch: list[StoredEvent] = []
        for event in _events(log, path):
            batch.append(event.stored())
            if len(batch) == BATCH_EVENTS:
                count += _insert(ledger, batch, tracker)
                batch = []
        count += _insert(ledger, batch, tracker)
    if keys_path(path).exists():
        import_keys(ledger, keys_path(path))
    ledger.members.reindex()  # the identity index is beside the log, not in it
    return count


def _insert(ledger: Ledger, batch: list[StoredEvent], tracker: Tracker | None) -> int:
    if batch:
        ledger.core.recorder.insert_events(batch)
        if tracker is not None:
            tracker.advance(len(batch))
    return len(batch)


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} events/s" if seconds > 0 else "n/a events/s"


def _run_export(args: argparse.Namespace) -> int:
    ledger = open_ledger(Settings.from_env())
    try:
        with progress("export") as tracker:
            count = export_log(ledger, args.file, tracker)
        seconds = tracker.elapsed
    except OSError as e:
        sys.stderr.write(f"export failed: {e}\n")
        return 1
    finally:
        ledger.close()
    summary(f"export: {count} events to {args.file} in {seconds:.1f} s ({_rate(count, seconds)})")
    return 0


def _run_import(args: argparse.Namespace) -> int:
    ledger = open_ledger(Settings.from_env())
    try:
        with progress("import") as tracker:
            count = import_log(ledger, args.file, tracker)
        seconds = tracker.elapsed
    except (LogError, OSError) as e:
        sys.stderr.write(f"import refused: {e}\n")
        return 1
    finally:
        ledger.close()
    summary(f"import: {count} events from {args.file} in {seconds:.1f} s ({_rate(count, seconds)})")
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    export = commands.add_parser("export", help="write the whole event log as JSON Lines")
    export.add_argument("file", metavar="FILE.jsonl")
    export.set_defaults(run=_run_export)
    load = commands.add_parser("import", help="load a JSON Lines log into an empty store")
    load.add_argument("file", metavar="FILE.jsonl")
    load.set_defaults(run=_run_import)
