"""Rendering a console page: the template engine (Jinja2, autoescaped, strict about unknown
names), the context every page shares, and the security headers of every console response."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

from api.console import text
from api.console.session import PAGES, Viewer, csrf_token, pop_flash, session_data

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
NAV = [(name, f"/console/{name}") for name in PAGES]
SECURITY_HEADERS = {
    # no script at all; styles only from our own static file; forms post only to us
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",  # balances and settlements are not for shared caches
}


def template_config(zone: ZoneInfo) -> TemplateConfig[JinjaTemplateEngine]:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yuan"] = text.yuan
    env.filters["pts"] = text.points
    env.filters["when"] = partial(text.local, zone=zone)
    env.filters["day"] = partial(text.local, zone=zone, with_time=False)
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def page(
    request: Request[Any, Any, Any],
    viewer: Viewer | None,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> Template:
    """A console page in the viewer's language, with the navigation their role may see."""
    lang = viewer.lang if viewer else text.language(session_data(request).get("lang"))
    shared = {
        "t": text.labels(lang),
        "lang": lang,
        "other_lang": "en" if lang == "zh-CN" else "zh-CN",
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "viewer": viewer,
        "role": text.labels(lang)[f"role_{viewer.principal.role}"] if viewer else None,
        "nav": [(name, href) for name, href in NAV if viewer and viewer.may(name)],
        "csrf": viewer.csrf if viewer else csrf_token(request),
        "flash": pop_flash(request),
        "event_name": partial(text.named, text.EVENT_TYPES, lang=lang),
        "tier_name": partial(text.named, text.TIERS, lang=lang),
        "projection_name": partial(text.named, text.PROJECTIONS, lang=lang),
    }
    return Template(template_name=template, context=shared | context, status_code=status)


def add_security_headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
