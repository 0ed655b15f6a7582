"""The record under a receipt's id: a member's sale or a sale without a member.

A receipt number is used once per store whoever bought, so both kinds of sale share the id
`ids.sale_id(store_id, receipt_no)`; its first event says which kind the record is.
"""

from __future__ import annotations

from ledger.domain import nonmember, sale
from ledger.domain.model import DomainEvent
from ledger.domain.nonmember import NonMemberSale, NonMemberSaleRecorded, NonMemberSaleRefunded
from ledger.domain.sale import Sale


def evolve(state: Sale | NonMemberSale | None, event: DomainEvent) -> Sale | NonMemberSale:
    """Either kind of sale record under a receipt's id (its first event says which)."""
    if isinstance(state, NonMemberSale) or (
        state is None and isinstance(event, NonMemberSaleRecorded)
    ):
        return nonmember.evolve(state, event)
    if isinstance(event, NonMemberSaleRefunded | NonMemberSaleRecorded):
        raise TypeError(f"a member's sale cannot apply {type(event).__name__}")
    return sale.evolve(state, event)
