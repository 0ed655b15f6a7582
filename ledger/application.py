"""The ledger application: commands in, events saved atomically, views out.

Each command reads the aggregates it needs, lets a pure decision function produce events, and
saves them in one transaction. Concurrency is optimistic: a clash on (aggregate, version) is
retried with fresh state (bounded); a clash on a deterministic id is the idempotency check.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError

from ledger import apikey, enrolment, ids, rulebook, store
from ledger.apikey import IssuedKey, Principal
from ledger.commands import (
    EnrolMember,
    Identifier,
    IssueApiKey,
    PostSale,
    RegisterStore,
    checked,
)
from ledger.errors import (
    IdempotencyConflict,
    IdNumberTaken,
    InvalidInput,
    MemberExists,
    MemberNotFound,
    NoRuleSetInForce,
    StoreNotFound,
    Unavailable,
    invariant,
)
from ledger.member import Member, MemberEvent
from ledger.member import evolve as evolve_member
from ledger.model import Aggregate, DomainEvent, Evolve, Snapshot, projector
from ledger.persistence import eventsourcing_env
from ledger.rules import RuleSet, RuleVersion, check
from ledger.sale import Sale, SaleReceipt, check_business_time, evolve_sale, record_sale
from ledger.settings import Settings
from ledger.store import StoreView
from ledger.views import MemberView, member_view

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

RETRIES_MAX = 25
SNAPSHOT_INTERVAL = 100
_canonical = msgspec.json.Encoder(order="deterministic")

project_member = projector(evolve_member)


class Ledger(Application[UUID]):
    """The pharmacy points ledger (one instance per process; thread-safe)."""

    name = "Ledger"
    is_snapshotting_enabled = True
    snapshot_class = Snapshot

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str] | None = None,
        on_appended: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self._id_secret = ids.keyed_hash(settings.master_key, "key", "id-number").encode()
        self._on_appended = on_appended
        base = eventsourcing_env(settings.database_url)
        base["AGGREGATE_CACHE_MAXSIZE"] = str(settings.member_cache_size)
        super().__init__(env=base | (env or {}))

    # -- plumbing ---------------------------------------------------------------------------

    def _notify(self, recordings: list[Any]) -> None:
        if self._on_appended is not None:
            self._on_appended(len(recordings))

    def _save(self, *events: DomainEvent) -> None:
        """Save events atomically, then snapshot any member whose version crossed the interval
        (eventsourcing only snapshots aggregates it saved itself, and these are saved as events)."""
        self.save(*events)
        for event in events:
            if isinstance(event, MemberEvent) and event.originator_version % SNAPSHOT_INTERVAL == 0:
                self.take_snapshot(
                    event.originator_id,
                    version=event.originator_version,
                    projector_func=project_member,
                )

    def _get(self, aggregate_id: UUID, evolve: Evolve[A]) -> A | None:
        try:
            return self.repository.get(aggregate_id, projector_func=projector(evolve))
        except AggregateNotFoundError:
            return None

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` until it saves without a version clash (bounded), mapping outages to 503."""
        for n in range(RETRIES_MAX):
            try:
                return attempt()
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * (n + 1)))  # noqa: S311 - jitter, not crypto
            except PersistenceError as e:
                raise Unavailable(f"the event store is unavailable: {type(e).__name__}") from e
        raise Unavailable("too much contention on this member; try again")

    def _fingerprint(self, *parts: object) -> str:
        return ids.fingerprint(b"|".join(_canonical.encode(p) for p in parts))

    # -- rules --------------------------------------------------------------------------------

    def _rulebook(self) -> rulebook.RuleBook | None:
        return self._get(ids.RULEBOOK_ID, rulebook.evolve)

    def publish_rules(self, rules: RuleSet, operator: str) -> RuleVersion:
        rules = check(rules)
        if rules.timezone is None:  # pin the chain's zone on the version, so replay never drifts
            rules = msgspec.structs.replace(rules, timezone=self.settings.timezone)

        def attempt() -> RuleVersion:
            event = rulebook.publish(self._rulebook(), rules, operator)
            self.save(event)
            return RuleVersion(version=event.version, published_at=event.timestamp, rules=rules)

        return self._retrying(attempt)

    def rules_at(self, at: datetime) -> RuleVersion | None:
        return rulebook.in_force(self._rulebook(), at)

    def _rules_for(self, at: datetime) -> RuleVersion:
        version = self.rules_at(at)
        if version is None:
            raise NoRuleSetInForce(
                f"no rule set is in force at {at.isoformat()}", field="occurred_at"
            )
        return version

    # -- stores and keys -------------------------------------------------------------------

    def configure_store(
        self, store_id: str, cmd: RegisterStore, operator: str
    ) -> tuple[StoreView, bool]:
        checked(store_id, Identifier, "store_id")

        def attempt() -> tuple[StoreView, bool]:
            current = self._get(ids.store_id(store_id), store.evolve)
            event = store.configure(current, store_id, cmd, operator)
            if event is None:
                invariant(current is not None, "no change is only possible for a known store")
                return store.view(current), False  # type: ignore[arg-type]
            self.save(event)
            return store.view(store.evolve(current, event)), current is None

        return self._retrying(attempt)

    def get_store(self, store_id: str) -> StoreView | None:
        current = self._get(ids.store_id(store_id), store.evolve)
        return store.view(current) if current else None

    def _require_store(self, store_id: str) -> None:
        if self.get_store(store_id) is None:
            raise StoreNotFound(f"store {store_id!r} is not registered", field="store_id")

    def issue_api_key(self, cmd: IssueApiKey, operator: str) -> IssuedKey:
        if cmd.role == "pos" and cmd.store_id is None:
            raise InvalidInput("a pos key must be bound to a store", field="store_id")
        if cmd.role != "pos" and cmd.store_id is not None:
            raise InvalidInput("only pos keys are bound to a store", field="store_id")
        if cmd.store_id is not None:
            self._require_store(cmd.store_id)
        key = apikey.new_key()
        event = apikey.issue(key, cmd.role, cmd.store_id, operator)
        self._retrying(lambda: self.save(event))
        return IssuedKey(
            key=key, key_id=str(event.originator_id), role=cmd.role, store_id=cmd.store_id
        )

    def ensure_admin_key(self, key: str) -> None:
        """Register `LEDGER_ADMIN_KEY` as an admin key (once; later starts find it there)."""
        if self.authenticate(key) is None:
            with contextlib.suppress(IntegrityError):  # another process registered it first
                self.save(apikey.issue(key, "admin", None, "LEDGER_ADMIN_KEY"))

    def authenticate(self, key: str) -> Principal | None:
        state = self._get(ids.api_key_id(ids.hash_api_key(key)), apikey.evolve)
        return apikey.principal(state) if state else None

    # -- members ---------------------------------------------------------------------------

    def _member(self, card: str) -> Member:
        member = self._get(ids.member_id(card), evolve_member)
        if member is None:
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        return member

    def enrol(self, cmd: EnrolMember, operator: str, now: datetime) -> tuple[MemberView, bool]:
        occurred_at = cmd.occurred_at or now
        check_business_time(occurred_at, now)
        self._require_store(cmd.store_id)
        id_hash = (
            ids.keyed_hash(self._id_secret, "id-number", cmd.id_number.upper())
            if cmd.id_number
            else None
        )
        fingerprint = ids.keyed_hash(self._id_secret, "enrol", _canonical.encode(cmd).decode())

        def attempt() -> tuple[MemberView, bool]:
            existing = self._get(ids.member_id(cmd.member_id), evolve_member)
            if existing is not None:
                if self._enrol_fingerprint(existing) != fingerprint:
                    raise MemberExists(
                        f"card {cmd.member_id!r} is already enrolled", field="member_id"
                    )
                return self.member(cmd.member_id, now), False
            if id_hash is not None:
                claim = self._get(ids.identity_claim_id(id_hash), enrolment.evolve_claim)
                if claim is not None:
                    raise IdNumberTaken("this ID number is already enrolled", field="id_number")
            version = self.rules_at(occurred_at)
            tiers = version.rules.tiers if version else None
            events = enrolment.enrol(
                cmd,
                occurred_at=occurred_at,
                tier=tiers.levels[0].code if tiers else None,
                id_hash=id_hash,
                fingerprint=fingerprint,
                operator=operator,
            )
            self.save(*events)
            return self.member(cmd.member_id, now), True

        return self._retrying(attempt)

    def _enrol_fingerprint(self, member: Member) -> str:
        first = next(iter(self.events.get(member.id, lte=1)))
        return str(first.fingerprint)  # type: ignore[attr-defined]

    def member(self, card: str, now: datetime) -> MemberView:
        version = self.rules_at(now)
        return member_view(self._member(card), version.rules if version else None, now)

    # -- sales -----------------------------------------------------------------------------

    def _sale(self, sale_uuid: UUID) -> Sale | None:
        return self._get(sale_uuid, evolve_sale)

    def sale_record(self, store_id: str, receipt_no: str) -> Sale | None:
        return self._sale(ids.sale_id(store_id, receipt_no))

    def post_sale(self, cmd: PostSale, operator: str, now: datetime) -> tuple[SaleReceipt, bool]:
        """Record a POS sale exactly once; a retry of the same body gets the original receipt."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self._fingerprint(cmd)
        sale_uuid = ids.sale_id(cmd.store_id, cmd.receipt_no)

        def attempt() -> tuple[SaleReceipt, bool]:
            existing = self._sale(sale_uuid)
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise IdempotencyConflict(
                        f"receipt {cmd.receipt_no!r} of store {cmd.store_id!r} was posted "
                        "with a different body",
                        field="receipt_no",
                    )
                return existing.receipt, False
            self._require_store(cmd.store_id)
            version = self._rules_for(cmd.occurred_at)
            member = self._member(cmd.member_id)
            events, receipt = record_sale(
                cmd, member, version, fingerprint=fingerprint, operator=operator, now=now
            )
            self._save(*events)
            return receipt, True

        return self._retrying(attempt)

    def ping(self) -> bool:
        """Whether the event store answers a query."""
        try:
            self.recorder.max_notification_id()
        except PersistenceError:
            return False
        return True
