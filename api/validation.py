"""Strict requests: path parameters and bodies are checked against their wire types with msgspec
before any handler runs, so bad input is a 422 naming the field and nothing is read or written.

Litestar converts bodies leniently (the string "100" would pass as the integer 100) and does not
enforce `Annotated` constraints on path parameters; a ledger refuses wrong input instead. A path
parameter is checked by its name (`PATH_PARAMETERS`: one name, one meaning in every route), a
body by the handler's own `data` type, decoded in strict mode.
"""

from __future__ import annotations

import re
import typing
from functools import cache
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.handlers import HTTPRouteHandler
from msgspec import Meta

from ledger.domain.commands import CardNumber, Identifier

KeyId = Annotated[str, Meta(min_length=1, max_length=64)]
Period = Annotated[str, Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]

PATH_PARAMETERS: dict[str, Any] = {
    "member_id": CardNumber,
    "card": CardNumber,
    "store_id": Identifier,
    "receipt_no": Identifier,
    "redemption_no": Identifier,
    "key_id": KeyId,
    "period": Period,
}
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def _invalid(key: str, error: msgspec.ValidationError) -> ValidationException:
    text = str(error)
    match = _PATH.search(text)
    key = key + (match.group("path") if match else "")
    message = _PATH.sub("", text)
    return ValidationException(
        detail=f"{key or 'body'}: {message}", extra=[{"key": key, "message": message}]
    )


@cache
def _body_type(handler: HTTPRouteHandler) -> Any:
    parameter = handler.parsed_fn_signature.parameters.get("data")
    if parameter is None:
        return None
    annotation = parameter.annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


async def strict_request(request: Request[Any, Any, Any]) -> None:
    for name, value in request.path_params.items():
        kind = PATH_PARAMETERS.get(name)
        if kind is not None:
            try:
                msgspec.convert(value, type=kind)
            except msgspec.ValidationError as e:
                raise _invalid(name, e) from e
    body_type = _body_type(request.route_handler)
    if body_type is None:
        return
    raw = await request.body()
    try:
        msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as e:
        raise _invalid("", e) from e
    except (msgspec.DecodeError, UnicodeDecodeError) as e:  # JSON is UTF-8 (RFC 8259)
        raise ClientException(f"JSON is malformed: {e}") from e
