"""`/v1/sales`: the POS posts a sale and gets points, balance and tier back (idempotent)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.domain.apikey import Principal
from ledger.domain.commands import Identifier, PostSale, RefundSale
from ledger.domain.nonmember import NonMemberRefundReceipt, NonMemberSaleReceipt
from ledger.domain.sale import RefundReceipt, SaleReceipt
from ledger.services.sales import SalesService


class SalesController(Controller):
    path = "/v1/sales"
    tags = ["sales"]  # noqa: RUF012

    @post("/", operation_id="postSale", guards=[roles("pos")], sync_to_thread=True)
    def post_sale(
        self,
        data: JSONBody[PostSale],
        sales: NamedDependency[SalesService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[SaleReceipt | NonMemberSaleReceipt]:
        """A sale with `member_id: null` earns nothing: `points_earned` 0, `balance` null."""
        require_store(principal, data.store_id)
        receipt, created = sales.post(data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{receipt_no:str}/refunds",
        operation_id="refundSale",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def refund(
        self,
        store_id: FromPath[Identifier],
        receipt_no: FromPath[Identifier],
        data: JSONBody[RefundSale],
        sales: NamedDependency[SalesService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RefundReceipt | NonMemberRefundReceipt]:
        require_store(principal, store_id)
        receipt, created = sales.refund(store_id, receipt_no, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
