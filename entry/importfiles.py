"""The files `ledger import-members` reads (SPEC 2.11, docs/MIGRATION.md): JSON Lines, one member
per line, or two CSV files (members, and their lots) from a chain whose export is a spreadsheet.

Each yields (line number, `ImportLine`) or (line number, `Rejection`) one member at a time, so a
JSON Lines file of any size is read in flat memory; a lots CSV is read whole first (grouped by
card), a members CSV a row at a time.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from ledger.domain.opening import ImportLine
from ledger.services.imports import Parsed, Rejection

_decode = msgspec.json.Decoder(ImportLine).decode
MEMBER_COLUMNS = (
    "member_id",
    "store_id",
    "enrolled_at",
    "source_ref",
    "name",
    "phone",
    "id_number",
    "birthday",
    "tier",
    "tier_spend",
    "stored_value_fen",
)
LOT_COLUMNS = ("member_id", "points", "earned_at", "expires_at")


def _card_of(raw: bytes) -> str | None:
    try:
        found = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    card = found.get("member_id") if isinstance(found, dict) else None
    return card if isinstance(card, str) else None


def jsonl(path: Path) -> Iterator[Parsed]:
    """The members of a JSON Lines file; blank lines are skipped (but counted)."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                yield number, _decode(raw)
            except msgspec.DecodeError as e:  # ValidationError is one
                yield number, Rejection(line=number, member_id=_card_of(raw), reason=_why(e))


def _why(e: Exception) -> str:
    return f"invalid-input: {e}"


def _tier_spend(cell: str) -> list[dict[str, Any]]:
    """'2025-03:120000;2025-04:5000' → tier-spend months."""
    months = []
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        month, _, fen = part.partition(":")
        months.append({"month": month.strip(), "spend_fen": fen.strip()})
    return months


def _lots(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_card: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with path.open(encoding="utf-8-sig", newline="") as rows:
        for row in csv.DictReader(rows):
            lot = {k: v for k in LOT_COLUMNS[1:] if (v := (row.get(k) or "").strip())}
            by_card[(row.get("member_id") or "").strip()].append(lot)
    return by_card


def csv_files(members: Path, lots: Path | None) -> Iterator[Parsed]:
    """The members of a members CSV (line numbers as a spreadsheet shows them: the header is
    line 1) with their lots from the lots CSV, if given."""
    lots_of = _lots(lots) if lots is not None else {}
    with members.open(encoding="utf-8-sig", newline="") as rows:
        reader = csv.DictReader(rows)
        unknown = set(reader.fieldnames or ()) - set(MEMBER_COLUMNS)
        for number, row in enumerate(reader, 2):
            card = (row.get("member_id") or "").strip() or None
            if unknown or None in row:
                reason = f"invalid-input: unknown columns {sorted(unknown)} or extra cells"
                yield number, Rejection(line=number, member_id=card, reason=reason)
                continue
            fields: dict[str, Any] = {
                k: v.strip() for k, v in row.items() if isinstance(v, str) and v.strip()
            }
            fields["tier_spend"] = _tier_spend(fields.get("tier_spend", ""))
            fields["lots"] = lots_of.get(card or "", [])
            try:
                yield number, msgspec.convert(fields, ImportLine, strict=False)
            except msgspec.ValidationError as e:
                yield number, Rejection(line=number, member_id=card, reason=_why(e))
