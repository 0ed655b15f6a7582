"""Migration (SPEC 2.11): members from a legacy system, imported a batch at a time.

Each batch of lines is checked (a bad line is rejected with its number and reason, and nothing
of that member is written), compared with what the index already holds (the same line again is
`unchanged`, another line for an imported, enrolled or erased card a `conflict`), and the rest
are opened in ONE transaction: every member's events, their identity-index rows (the ID number's
and phone's keyed hashes, the birthday, and the line's keyed fingerprint, which erasure deletes
with the row) and their new member keys. A batch commits whole or not at all, so a run killed
mid-file and run again imports every member once: what committed is `unchanged` the second time.
While one batch is written (a thread of its own), the next is read and checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError

from ledger.domain import enrolment, ids, opening
from ledger.domain.commands import EnrolMember
from ledger.domain.errors import InvalidInput, LedgerError, NoRuleSetInForce
from ledger.domain.model import DomainEvent
from ledger.domain.personal import PersonalData
from ledger.infrastructure.identityindex import IdentityChange, IdentityRow, NewKey
from ledger.infrastructure.vault import MemberKeys
from ledger.policies.ruleset import RuleSet
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore
from ledger.services.members import MembersService
from ledger.services.rules import RulesService

BATCH_MEMBERS = 400  # members per transaction: a few hundred keeps memory flat and commits few
FINGERPRINT_PREFIX = "import:"
_canonical = msgspec.json.Encoder(order="deterministic")


class ImportSummary(msgspec.Struct, kw_only=True):
    """The last line an import prints (SPEC 2.11)."""

    imported: int = 0
    unchanged: int = 0
    conflicts: int = 0
    rejected: int = 0
    expired_on_import: int = 0  # lots due at import, of the members imported in this run


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    line: int
    member_id: str | None
    reason: str


Parsed = tuple[int, opening.ImportLine | Rejection]  # a line number and what it held


class _Member(msgspec.Struct, kw_only=True):
    """A line on its way in: checked, keyed, and (once its key is known) its events."""

    line_no: int
    line: opening.ImportLine
    uuid: UUID
    fingerprint: str
    row: IdentityRow
    personal: PersonalData
    events: list[DomainEvent] = []
    expired: int = 0


Written = tuple[list[_Member], int]  # the members a batch wrote, and its conflicts


class _Run(msgspec.Struct, kw_only=True):
    """One run's settings, its counts so far, and the batch being written."""

    rules: RuleSet  # in force now (or the first version): the tiers
    now: datetime
    operator: str
    dry_run: bool
    rejected: Callable[[Rejection], None]
    summary: ImportSummary = msgspec.field(default_factory=ImportSummary)
    writing: Future[Written] | None = None
    writing_ids: set[UUID] = msgspec.field(default_factory=set)
    writing_holders: dict[str, UUID] = msgspec.field(default_factory=dict)

    def reject(self, line: int, member_id: str | None, reason: str) -> None:
        self.summary.rejected += 1
        self.rejected(Rejection(line=line, member_id=member_id, reason=reason))

    def written(self) -> None:
        """Wait for the batch being written, and count it."""
        if self.writing is not None:
            saved, conflicts = self.writing.result()
            self.summary.imported += len(saved)
            self.summary.conflicts += conflicts
            self.summary.expired_on_import += sum(m.expired for m in saved)
        self.writing, self.writing_ids, self.writing_holders = None, set(), {}


class ImportService:
    def __init__(
        self,
        core: LedgerCore,
        rules: RulesService,
        access: AccessService,
        members: MembersService,
        keys: MemberKeys,
    ) -> None:
        self.core = core
        self.rules = rules
        self.access = access
        self.members = members
        self.keys = keys

    def run(
        self,
        lines: Iterable[Parsed],
        *,
        operator: str,
        now: datetime,
        dry_run: bool = False,
        rejected: Callable[[Rejection], None] = lambda _: None,
        progress: Callable[[int, ImportSummary], None] = lambda _n, _s: None,
    ) -> ImportSummary:
        """Import `lines` in batches; `rejected` hears each bad line, `progress` each batch
        (lines read so far, the summary so far). `dry_run` writes nothing."""
        version = self.rules.at_or_first(now)
        if version is None:
            raise NoRuleSetInForce("publish a rule set before importing members")
        run = _Run(
            rules=version.rules, now=now, operator=operator, dry_run=dry_run, rejected=rejected
        )
        batch: dict[UUID, _Member] = {}
        read = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import") as writer:
            try:
                for line_no, parsed in lines:
                    read += 1
                    member = self._checked(run, line_no, parsed)
                    if member is not None and member.uuid in batch:
                        self._batch(run, batch, writer)  # the card again: after its first line
                        batch = {}
                    if member is not None:
                        batch[member.uuid] = member
                    if len(batch) >= BATCH_MEMBERS:
                        self._batch(run, batch, writer)
                        batch = {}
                        progress(read, run.summary)
                self._batch(run, batch, writer)
            finally:
                run.written()
        progress(read, run.summary)
        return run.summary

    def _checked(
        self, run: _Run, line_no: int, parsed: opening.ImportLine | Rejection
    ) -> _Member | None:
        """The line keyed for the index, or None when it is rejected (and said so)."""
        if isinstance(parsed, Rejection):
            run.reject(parsed.line, parsed.member_id, parsed.reason)
            return None
        try:
            opening.check_line(parsed, run.now, run.rules)
            keys = enrolment.personal_keys(_as_enrolment(parsed))
            self.access.require_store(parsed.store_id)
        except LedgerError as e:
            run.reject(line_no, parsed.member_id, f"{e.slug}: {e}")
            return None
        uuid = ids.member_id(parsed.member_id)
        hashed = self.members.index_hash
        fingerprint = FINGERPRINT_PREFIX + hashed("import", _canonical.encode(parsed))
        row = IdentityRow(
            member_id=uuid,
            id_hash=hashed("id-number", keys.id_number) if keys.id_number else None,
            phone_hash=hashed("phone", keys.phone) if keys.phone else None,
            birthday=keys.birthday,
            fingerprint=fingerprint,
        )
        personal = PersonalData(  # as `enrolment.personal_data` makes it, the number checked once
            name=parsed.name,
            phone=parsed.phone,
            id_number=keys.id_number,
            birthday=parsed.birthday.isoformat() if parsed.birthday else None,
        )
        return _Member(
            line_no=line_no,
            line=parsed,
            uuid=uuid,
            fingerprint=fingerprint,
            row=row,
            personal=personal,
        )

    def _batch(self, run: _Run, batch: dict[UUID, _Member], writer: ThreadPoolExecutor) -> None:
        """Sort a batch into unchanged, conflicts, rejected and new; hand the new to `writer`
        (after the batch it is writing, if any: one at a time, in order)."""
        if not batch:
            return
        if run.writing_ids & batch.keys():  # a card of the batch being written: see it first
            run.written()
        fresh = self._new(run, list(batch.values()))
        keys = self.keys.for_import([m.uuid for m in fresh])
        for member in list(fresh):
            if member.uuid not in keys:  # its key was destroyed: an erased member
                run.summary.conflicts += 1
                fresh.remove(member)
                continue
            key, _ = keys[member.uuid]
            personal = member.personal
            sealed = None if personal.is_empty() else self.keys.sealed(key, member.uuid, personal)
            opened, lots = opening.open_member(
                member.line,
                now=run.now,
                rules=run.rules,
                rules_at=self.rules.at_or_first,
                sealed=sealed,
                operator=run.operator,
                member_uuid=member.uuid,
            )
            member.events = [opened, *lots]
            member.expired = opened.lots_expired_on_import
        run.written()
        if run.dry_run:
            existing = [m for m in fresh if self._exists(m)]
            run.summary.conflicts += len(existing)
            fresh = [m for m in fresh if m not in existing]
            run.summary.imported += len(fresh)
            run.summary.expired_on_import += sum(m.expired for m in fresh)
            return
        run.writing = writer.submit(self._save, fresh, keys)
        run.writing_ids = {m.uuid for m in fresh}
        run.writing_holders = {m.row.id_hash: m.uuid for m in fresh if m.row.id_hash}

    def _new(self, run: _Run, batch: list[_Member]) -> list[_Member]:
        """The batch's members the index does not know yet (the others counted), less those
        whose ID number another member holds (rejected)."""
        rows = self.core.identities.rows_of([m.uuid for m in batch])
        holders = self.core.identities.holders([m.row.id_hash for m in batch if m.row.id_hash])
        holders = run.writing_holders | holders
        fresh: list[_Member] = []
        summary = run.summary
        for member in batch:
            known = rows.get(member.uuid)
            if known is not None:
                if known.fingerprint == member.fingerprint:
                    summary.unchanged += 1
                else:
                    summary.conflicts += 1
                continue
            holder = holders.get(member.row.id_hash or "")
            if holder is not None and holder != member.uuid:
                run.reject(
                    member.line_no,
                    member.line.member_id,
                    "id-number-taken: another member holds this ID number",
                )
                continue
            if member.row.id_hash:
                holders[member.row.id_hash] = member.uuid
            fresh.append(member)
        return fresh

    def _exists(self, member: _Member) -> bool:
        """Whether the card has events already (enrolled, or erased): a conflict."""
        return bool(self.core.recorder.select_events(member.uuid, limit=1))

    def _save(self, fresh: list[_Member], keys: dict[UUID, tuple[bytes, bytes | None]]) -> Written:
        """Write `fresh` in one transaction; on a clash (a card with events but no index row:
        enrolled without personal data, or erased), count those as conflicts and write the rest."""
        conflicts = 0
        for _ in range(3):
            if not fresh:
                break
            change = IdentityChange(
                put=tuple(m.row for m in fresh),
                keys=tuple(
                    NewKey(m.uuid, wrapped)
                    for m in fresh
                    if (wrapped := keys[m.uuid][1]) is not None
                ),
            )
            try:
                self.core.save(*(e for m in fresh for e in m.events), identity=change)
            except IntegrityError:
                existing = [m for m in fresh if self._exists(m)]
                conflicts += len(existing)
                fresh = [m for m in fresh if m not in existing]
            else:
                return fresh, conflicts
        if fresh:
            raise InvalidInput("an import batch kept clashing with other writes; run it again")
        return fresh, conflicts


def _as_enrolment(line: opening.ImportLine) -> EnrolMember:
    """The line's personal data as an enrolment states it (the same checks)."""
    return EnrolMember(
        member_id=line.member_id,
        store_id=line.store_id,
        name=line.name,
        phone=line.phone,
        id_number=line.id_number,
        birthday=line.birthday,
    )
