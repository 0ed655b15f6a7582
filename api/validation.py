"""Strict requests: path and query parameters and bodies are checked against their wire types
with msgspec before any handler runs, so bad input is a 422 naming the field and nothing is read
or written.

Litestar converts bodies leniently (the string "100" would pass as the integer 100) and does not
enforce `Annotated` constraints on path parameters; a ledger refuses wrong input instead. A path
parameter is checked by its name (`PATH_PARAMETERS`: one name, one meaning in every route), a
query parameter by the handler's own annotation (so the OpenAPI document shows its bounds), a
body by the handler's own `data` type, decoded in strict mode. Then the bounds no JSON schema
can say (SPEC 3.1, `ledger.domain.bounds`): every time in [2000-01-01, 2100-01-01) chain time,
every date (a birthday) from 1900 to today, and no control characters in any text of the path,
the query or the body (tab and newline only in a `reason`).
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.handlers import HTTPRouteHandler
from msgspec import Meta

from ledger.domain.bounds import (
    FREE_TEXT_PATTERN,
    INTEGER_MAX,
    PERIOD_PATTERN,
    date_problem,
    text_problem,
    time_problem,
)
from ledger.domain.commands import CardNumber, Identifier, SaleBatch, SaleBatchEnvelope

KeyId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Period = Annotated[str, Meta(pattern=PERIOD_PATTERN, description="YYYY-MM, 2000-01 … 2099-12")]
Day = Annotated[
    str,
    Meta(
        pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description="YYYY-MM-DD, a day of 2000 … 2099 (chain time)",
    ),
]

# Query parameter types (the handlers declare them, so the OpenAPI document shows the bounds).
Count = Annotated[int, Meta(ge=0, le=INTEGER_MAX, description="an integer, 0 … 2^63-1")]
Instant = Annotated[
    datetime,
    Meta(tz=True, description="ISO 8601 with offset, in [2000-01-01, 2100-01-01) chain time"),
]
EventType = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z]+$")]
Reason = Annotated[str, Meta(min_length=1, max_length=200, pattern=FREE_TEXT_PATTERN)]

T = TypeVar("T")
# A batch's items are checked one by one in the handler (each as if posted alone): the edge
# checks only its envelope.
ENVELOPES: dict[Any, Any] = {SaleBatch: SaleBatchEnvelope}
PATH_PARAMETERS: dict[str, Any] = {
    "member_id": CardNumber,
    "card": CardNumber,
    "store_id": Identifier,
    "receipt_no": Identifier,
    "redemption_no": Identifier,
    "key_id": KeyId,
    "period": Period,
    "date": Day,
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


@cache
def _query_types(handler: HTTPRouteHandler) -> dict[str, Any]:
    """The handler's query parameters and their declared types (Meta bounds included)."""
    found: dict[str, Any] = {}
    for name, parameter in handler.parsed_fn_signature.parameters.items():
        if type(parameter.kwarg_definition).__name__ != "QueryParameter":
            continue
        raw = parameter.raw
        if typing.get_origin(raw) is typing.Annotated:  # FromQuery[T]: T's own Meta kept
            inner, *extras = typing.get_args(raw)
            kept = [e for e in extras if type(e).__name__ != "QueryParameter"]
            raw = typing.Annotated[(inner, *kept)] if kept else inner
        key = getattr(parameter.kwarg_definition, "query", None) or name
        found[key] = raw
    return found


def _problem(key: str, message: str) -> ValidationException:
    return ValidationException(detail=f"{key}: {message}", extra=[{"key": key, "message": message}])


@cache
def _fields(struct: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """A Struct type's (attribute, wire) field names, once per type: msgspec.structs.fields
    resolves the class's annotations on every call, a quarter of the event loop's time per
    sale when called per request (py-spy, issue 18)."""
    return tuple((f.name, f.encode_name) for f in msgspec.structs.fields(struct))


def check_bounds(value: Any, key: str, zone: tzinfo, today: date) -> None:
    """The bounds of SPEC 3.1 over a decoded value (a Struct, list, dict or scalar), naming the
    first field that breaks one."""
    problem = None
    if isinstance(value, datetime):
        problem = time_problem(value, zone)
    elif isinstance(value, date):
        problem = date_problem(value, today)
    elif isinstance(value, str):
        problem = text_problem(value, key.rsplit(".", 1)[-1])
    elif isinstance(value, msgspec.Struct):
        for name, encode_name in _fields(type(value)):
            check_bounds(getattr(value, name), _join(key, encode_name), zone, today)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_bounds(item, f"{key}[{i}]", zone, today)
    elif isinstance(value, dict):
        for name, item in value.items():
            check_bounds(name, key, zone, today)
            check_bounds(item, _join(key, str(name)), zone, today)
    if problem is not None:
        raise _problem(key or "body", problem)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _zone(request: Request[Any, Any, Any]) -> tzinfo:
    zone: tzinfo = getattr(request.app.state, "zone", None) or UTC
    return zone


def _check_query(request: Request[Any, Any, Any], zone: tzinfo, today: date) -> None:
    types = _query_types(request.route_handler)
    for name, values in request.query_params.dict().items():
        for value in values:
            problem = text_problem(value, name) or text_problem(name, name)
            if problem is not None:
                raise _problem(name, problem)
        kind = types.get(name)
        if kind is None:
            continue
        try:
            converted = msgspec.convert(values[-1], type=kind, strict=False)
        except msgspec.ValidationError as e:
            raise _invalid(name, e) from e
        check_bounds(converted, name, zone, today)


async def strict_request(request: Request[Any, Any, Any]) -> None:
    zone = _zone(request)
    today = datetime.now(zone).date()
    for name, value in request.path_params.items():
        if isinstance(value, str) and text_problem(value, name):
            raise _problem(name, "must not hold control characters")
        kind = PATH_PARAMETERS.get(name)
        if kind is not None:
            try:
                msgspec.convert(value, type=kind)
            except msgspec.ValidationError as e:
                raise _invalid(name, e) from e
    _check_query(request, zone, today)
    body_type = _body_type(request.route_handler)
    if body_type is None:
        return
    body_type = ENVELOPES.get(body_type, body_type)
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as e:
        raise _invalid("", e) from e
    except (msgspec.DecodeError, UnicodeDecodeError) as e:  # JSON is UTF-8 (RFC 8259)
        raise ClientException(f"JSON is malformed: {e}") from e
    check_bounds(body, "", zone, today)


def decode_item(item: dict[str, Any], kind: type[T], request: Request[Any, Any, Any]) -> T:
    """One item of a batch, decoded and checked exactly as the body of its own request would
    be (ValidationException naming the field otherwise)."""
    zone = _zone(request)
    try:
        value = msgspec.json.decode(msgspec.json.encode(item), type=kind)
    except msgspec.ValidationError as e:
        raise _invalid("", e) from e
    check_bounds(value, "", zone, datetime.now(zone).date())
    return value
