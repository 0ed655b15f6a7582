"""`ledger what-if`: what would the sales in [from, to) have earned under another rule set?

Reads the log (never writes to it): every `SaleRecorded` whose business time is in range is
revalued with the pure valuation (`ledger.valuation.value_sale`), with the inputs the POS path
gave it — the sale's lines (their insured parts included) and time, the tier the member held at
the sale's time before the sale (`ledger.policies.tiers.tier_at`, as the POS path decides it),
the member's birthday — and compared with the points its recorded valuation earned, per store
and in total.
Refunds are not netted. The liability difference is Σ difference × the alternative rules'
`cost_per_point_fen`, rounded half-up (away from zero on a tie) once per figure.

The member facts come from a fold over `MemberEnrolled` (or `MemberImported`) and `TierChanged`
in log order (the member's tier changes, by business time, as the member aggregate keeps them). A sale's own
upgrade is saved before the sale record in the same transaction, so it is left out: the sale is
valued with the tier held before it. Tiers are taken as they happened: the alternative rules do
not replay tier upgrades.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from rich.console import Console
from rich.table import Table

from ledger.application import Ledger, open_ledger
from ledger.domain import ids, rulebook
from ledger.domain.errors import InvalidRuleSet, InvariantViolation
from ledger.domain.member import MemberEnrolled, MemberErased, TierChanged
from ledger.domain.model import projector
from ledger.domain.opening import MemberImported
from ledger.domain.sale import SaleRecorded
from ledger.infrastructure.logpages import pages
from ledger.infrastructure.topics import topics_of
from ledger.policies.ruleset import RuleSet, check
from ledger.policies.tiers import TierMark, effective_tier, tier_at
from ledger.policies.valuation import MemberFacts, value_sale
from ledger.settings import Settings
from replay_tools.progress import Tracker, progress, summary

TOPICS = topics_of(MemberEnrolled, MemberImported, TierChanged, SaleRecorded)


class StoreWhatIf(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    sales: int
    points_earned: int
    points_would_earn: int
    difference: int  # would − earned
    liability_difference_fen: int | None  # None when the alternative rules have no settlement


class WhatIfTotals(msgspec.Struct, frozen=True, kw_only=True):
    sales: int
    points_earned: int
    points_would_earn: int
    difference: int
    liability_difference_fen: int | None
    cost_per_point_fen: Decimal | None


class WhatIfReport(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    rule_version_alternative: int | None = None
    stores: list[StoreWhatIf]
    totals: WhatIfTotals


class _Member(msgspec.Struct):
    tier: str | None  # at enrolment
    birthday: str | None
    marks: list[tuple[TierMark, tuple[str | None, str | None]]] = []  # with (store, receipt)


class _Revaluation:
    """The fold: member facts as of each sale, and the per-store tallies of sales in range."""

    def __init__(
        self,
        rules: RuleSet,
        rule_version: int | None,
        start: datetime,
        end: datetime,
        birthday: Callable[[MemberEnrolled | MemberImported], str | None],
    ) -> None:
        self.rules, self.rule_version, self.start, self.end = rules, rule_version, start, end
        self.birthday = birthday
        self.members: dict[UUID, _Member] = {}
        self.tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # sales, earned, would

    def apply(self, event: object) -> None:
        if isinstance(event, MemberEnrolled | MemberImported):
            self.members[event.originator_id] = _Member(
                tier=event.tier, birthday=self.birthday(event)
            )
        elif isinstance(event, TierChanged):
            member = self.members[event.originator_id]
            mark = TierMark(event.occurred_at, event.from_tier, event.to_tier)
            member.marks.append((mark, (event.store_id, event.reference)))
        elif isinstance(event, SaleRecorded) and self.start <= event.occurred_at < self.end:
            self._revalue(event)

    def _revalue(self, sale: SaleRecorded) -> None:
        member = self.members.get(ids.member_id(sale.member_id))
        if member is None:
            raise InvariantViolation(f"sale {sale.receipt_no} of a member never enrolled")
        own = (sale.store_id, sale.receipt_no)  # this sale's own upgrade came before it
        marks = [mark for mark, cause in member.marks if cause != own]
        tier = tier_at(marks, sale.occurred_at, member.tier)
        facts = MemberFacts(tier=effective_tier(self.rules, tier), birthday=member.birthday)
        would = value_sale(self.rules, self.rule_version or 0, sale.occurred_at, sale.lines, facts)
        counts = self.tally[sale.store_id]
        counts[0] += 1
        counts[1] += sale.valuation.points
        counts[2] += would.points


def _liability(difference: int, cost: Decimal | None) -> int | None:
    if cost is None:
        return None
    return int((difference * cost).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def what_if(
    ledger: Ledger,
    rules: RuleSet,
    start: datetime,
    end: datetime,
    tracker: Tracker | None = None,
    *,
    rule_version: int | None = None,
) -> WhatIfReport:
    """Revalue every sale with `start <= occurred_at < end` under `rules`. Writes nothing."""
    rules = check(rules)
    if rules.timezone is None:  # as publishing does: the chain's zone
        rules = msgspec.structs.replace(rules, timezone=ledger.settings.timezone)
    fold = _Revaluation(rules, rule_version, start, end, _birthdays(ledger))
    stop = (
        ledger.core.recorder.max_notification_id() or 0
    )  # a fixed end: later sales are not counted
    if tracker is not None:
        tracker.total(stop)
    for page in pages(ledger.core.recorder, stop=stop, topics=TOPICS):
        for notification in page:
            fold.apply(ledger.core.mapper.to_domain_event(notification))
        if tracker is not None:
            tracker.advance(page[-1].id - tracker.done)
    if tracker is not None:
        tracker.advance(stop - tracker.done)
    return _report(start, end, rules, rule_version, fold.tally)


def _birthdays(ledger: Ledger) -> Callable[[MemberEnrolled | MemberImported], str | None]:
    """Each member's birthday as the valuation sees it now: the identity index's; for a member
    enrolled before the index, their enrolment's; never an erased member's."""
    erased = set(ledger.core.originators(MemberErased))

    def birthday(enrolled: MemberEnrolled | MemberImported) -> str | None:
        if enrolled.originator_id in erased:
            return None
        row = ledger.core.identities.row(enrolled.originator_id)
        if row is not None or isinstance(enrolled, MemberImported):
            return row.birthday if row is not None else None
        return enrolled.birthday

    return birthday


def _report(
    start: datetime,
    end: datetime,
    rules: RuleSet,
    rule_version: int | None,
    tally: dict[str, list[int]],
) -> WhatIfReport:
    cost = rules.settlement.cost_per_point_fen if rules.settlement else None
    stores = [
        StoreWhatIf(
            store_id=store_id,
            sales=sales,
            points_earned=earned,
            points_would_earn=would,
            difference=would - earned,
            liability_difference_fen=_liability(would - earned, cost),
        )
        for store_id, (sales, earned, would) in sorted(tally.items())
    ]
    earned, would = sum(s.points_earned for s in stores), sum(s.points_would_earn for s in stores)
    totals = WhatIfTotals(
        sales=sum(s.sales for s in stores),
        points_earned=earned,
        points_would_earn=would,
        difference=would - earned,
        liability_difference_fen=_liability(would - earned, cost),
        cost_per_point_fen=cost,
    )
    return WhatIfReport(
        start=start, end=end, rule_version_alternative=rule_version, stores=stores, totals=totals
    )


# -- the command ------------------------------------------------------------------------------


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from e
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give an offset, e.g. 2026-05-01T00:00:00+08:00")
    return value


def load_rules(path: str | Path) -> RuleSet:
    """A rule-set document as `PUT /v1/rules` takes it, decoded and checked the same way."""
    try:
        return check(msgspec.json.decode(Path(path).read_bytes(), type=RuleSet))
    except (msgspec.DecodeError, InvalidRuleSet) as e:
        raise InvalidRuleSet(f"{path}: {e}") from e


def published_rules(ledger: Ledger, version: int) -> RuleSet:
    """The rules of published version `version`."""
    try:
        book = ledger.core.repository.get(
            ids.RULEBOOK_ID, projector_func=projector(rulebook.evolve)
        )
    except AggregateNotFoundError:
        book = None
    if book is None or not 1 <= version <= len(book.versions):
        raise InvalidRuleSet(f"no published rule set version {version}", field="rule_version")
    return book.versions[version - 1].rules


def _signed(n: int | None) -> str:
    return "n/a" if n is None else f"{n:+,}"


def _table(report: WhatIfReport) -> None:
    table = Table(title=f"what-if, sales in [{report.start.isoformat()}, {report.end.isoformat()})")
    for name in ("store", "sales", "earned", "would earn", "difference", "liability Δ fen"):
        table.add_column(name, justify="left" if name == "store" else "right")
    rows: list[tuple[str, StoreWhatIf | WhatIfTotals]] = [(s.store_id, s) for s in report.stores]
    for n, (label, row) in enumerate([*rows, ("total", report.totals)], start=1):
        table.add_row(
            label,
            f"{row.sales:,}",
            f"{row.points_earned:,}",
            f"{row.points_would_earn:,}",
            _signed(row.difference),
            _signed(row.liability_difference_fen),
            end_section=n == len(rows),  # a rule above the total
        )
    Console(file=sys.stdout).print(table)


def _run(args: argparse.Namespace) -> int:
    if (args.rules is None) == (args.rule_version is None):
        sys.stderr.write("what-if: give either RULES.json or --rule-version N\n")
        return 2
    if args.start >= args.end:
        sys.stderr.write("what-if: --from must be before --to\n")
        return 2
    ledger = open_ledger(Settings.from_env())
    try:
        if args.rule_version is not None:
            rules = published_rules(ledger, args.rule_version)
        else:
            rules = load_rules(args.rules)
        with progress("what-if") as tracker:
            report = what_if(
                ledger, rules, args.start, args.end, tracker, rule_version=args.rule_version
            )
        seconds = tracker.elapsed
    except (InvalidRuleSet, OSError) as e:
        sys.stderr.write(f"what-if refused: {e}\n")
        return 1
    finally:
        ledger.close()
    t = report.totals
    line = (
        f"what-if: {t.sales} sales at {len(report.stores)} stores in {seconds:.1f} s: "
        f"{t.points_earned:,} points earned, {t.points_would_earn:,} would be, difference "
        f"{_signed(t.difference)} (liability {_signed(t.liability_difference_fen)} fen)"
    )
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        sys.stderr.write(line + "\n")  # stdout stays one JSON document
    else:
        _table(report)
        summary(line)
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser(
        "what-if", help="revalue the sales of a period under another rule set (writes nothing)"
    )
    parser.add_argument("rules", metavar="RULES.json", nargs="?", help="a rule-set document")
    parser.add_argument("--rule-version", type=int, help="a published version instead of a file")
    parser.add_argument("--from", dest="start", type=_instant, required=True, metavar="ISO")
    parser.add_argument("--to", dest="end", type=_instant, required=True, metavar="ISO")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.set_defaults(run=_run)
