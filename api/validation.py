"""Strict request bodies: each handler's `data` type is decoded with msgspec in strict mode.

Litestar converts bodies leniently (the string "100" would pass as the integer 100); a ledger
refuses wrong types instead. This hook decodes the raw body against the handler's own type
before the handler runs, so a wrong type is a 422 naming the field and nothing is written.
"""

from __future__ import annotations

import re
import typing
from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.handlers import HTTPRouteHandler

_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


@cache
def _body_type(handler: HTTPRouteHandler) -> Any:
    parameter = handler.parsed_fn_signature.parameters.get("data")
    if parameter is None:
        return None
    annotation = parameter.annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


async def strict_body(request: Request[Any, Any, Any]) -> None:
    body_type = _body_type(request.route_handler)
    if body_type is None:
        return
    raw = await request.body()
    try:
        msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as e:
        text = str(e)
        match = _PATH.search(text)
        key = match.group("path") if match else ""
        message = _PATH.sub("", text)
        raise ValidationException(
            detail=f"{key or 'body'}: {message}", extra=[{"key": key, "message": message}]
        ) from e
    except (msgspec.DecodeError, UnicodeDecodeError) as e:  # JSON is UTF-8 (RFC 8259)
        raise ClientException(f"JSON is malformed: {e}") from e
