"""`/v1/sales`: the POS posts a sale and gets points, balance and tier back (idempotent)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.commands import PostSale, RefundSale
from ledger.nonmember import NonMemberRefundReceipt, NonMemberSaleReceipt
from ledger.sale import RefundReceipt, SaleReceipt


class SalesController(Controller):
    path = "/v1/sales"
    tags = ["sales"]  # noqa: RUF012

    @post("/", operation_id="postSale", guards=[roles("pos")], sync_to_thread=True)
    def post_sale(
        self,
        data: JSONBody[PostSale],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[SaleReceipt | NonMemberSaleReceipt]:
        """A sale with `member_id: null` earns nothing: `points_earned` 0, `balance` null."""
        require_store(principal, data.store_id)
        post = ledger.post_sale if data.member_id is not None else ledger.post_non_member_sale
        receipt, created = post(data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{receipt_no:str}/refunds",
        operation_id="refundSale",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def refund(
        self,
        store_id: FromPath[str],
        receipt_no: FromPath[str],
        data: JSONBody[RefundSale],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RefundReceipt | NonMemberRefundReceipt]:
        require_store(principal, store_id)
        receipt, created = ledger.refund_sale(store_id, receipt_no, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
