"""Personal data as the domain sees it: what a member told us, and that data encrypted.

The clear text (`PersonalData`) is never stored or logged; an event carries only `Ciphertext`,
encrypted under the member's own key by `ledger.infrastructure.vault`.
"""

from __future__ import annotations

import msgspec


class PersonalData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a member told us about themselves. Never logged, never stored in clear."""

    name: str | None = None
    phone: str | None = None
    id_number: str | None = None
    birthday: str | None = None  # ISO date

    def is_empty(self) -> bool:
        return not (self.name or self.phone or self.id_number or self.birthday)


class Ciphertext(msgspec.Struct, frozen=True, kw_only=True):
    """Personal data encrypted under the member's key (what `MemberEnrolled.sealed` carries)."""

    nonce: bytes
    ciphertext: bytes  # AES-256-GCM, tag included
