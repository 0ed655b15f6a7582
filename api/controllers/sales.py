"""`/v1/sales`: the POS posts a sale and gets points, balance and tier back (idempotent), or a
batch of them (an offline store's upload), each answered as if posted alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from api.deps import now_of
from api.errors import Problem, http_problem, ledger_problem, validation_problem
from api.validation import decode_item
from ledger.domain.apikey import Principal
from ledger.domain.commands import Identifier, PostSale, RefundSale, SaleBatch
from ledger.domain.errors import LedgerError
from ledger.domain.nonmember import NonMemberRefundReceipt, NonMemberSaleReceipt
from ledger.domain.sale import RefundReceipt, SaleReceipt
from ledger.services.sales import SalesService

_encode = msgspec.json.Encoder().encode


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    body: msgspec.Raw  # the receipt, or the problem document, as the sale alone would get


class BatchResults(msgspec.Struct, frozen=True, kw_only=True):
    results: list[BatchResult]


def _problem(doc: Problem) -> BatchResult:
    return BatchResult(status=doc.status, body=msgspec.Raw(_encode(doc)))


class SalesController(Controller):
    path = "/v1/sales"
    tags = ["sales"]  # noqa: RUF012

    @post("/", operation_id="postSale", guards=[roles("pos")], sync_to_thread=True)
    def post_sale(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[PostSale],
        sales: NamedDependency[SalesService],
    ) -> Response[SaleReceipt | NonMemberSaleReceipt]:
        """A sale with `member_id: null` earns nothing: `points_earned` 0, `balance` null."""
        # The caller and the clock from the request, not as dependencies: one dependency is
        # resolved inline, several in a task group per request (issue 18, D69).
        principal = request.user
        require_store(principal, data.store_id)
        receipt, created = sales.post(data, principal.key_id, now_of(request))
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/batch",
        operation_id="postSaleBatch",
        guards=[roles("pos")],
        sync_to_thread=True,
        status_code=200,
    )
    def post_batch(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SaleBatch],
        sales: NamedDependency[SalesService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> BatchResults:
        """Up to 500 sales of the key's store, answered in order, each exactly as if posted
        alone (201, 200 replay, 409, 422 with its problem document); never all-or-nothing."""
        results: list[BatchResult | None] = [None] * len(data.sales)
        valid: list[tuple[int, PostSale]] = []
        for n, raw in enumerate(data.sales):
            try:
                cmd = decode_item(raw, PostSale, request)
                require_store(principal, cmd.store_id)
            except ValidationException as e:
                results[n] = _problem(validation_problem(e))
            except PermissionDeniedException as e:
                results[n] = _problem(http_problem(e))
            else:
                valid.append((n, cmd))
        outcomes = sales.post_batch([cmd for _, cmd in valid], principal.key_id, now)
        for (n, _), outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, LedgerError):
                results[n] = _problem(ledger_problem(outcome))
            else:
                receipt, created = outcome
                results[n] = BatchResult(
                    status=201 if created else 200, body=msgspec.Raw(_encode(receipt))
                )
        return BatchResults(results=[r for r in results if r is not None])

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
