"""The interactive API documentation at `/docs`: Swagger UI over the service's own OpenAPI
document (`/schema/openapi.json`).

Swagger UI's files come from the `swagger-ui-py` package (pinned in constraints.txt) and are
served from `/docs/assets/`; nothing is fetched from a CDN, so the page works on a network
without the internet and its Content-Security-Policy allows only this origin. The page starts
Swagger UI from a file of ours (`docs_static/init.js`), not an inline script.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

SWAGGER_UI = Path(swagger_ui.__file__).resolve().parent / "static"
OURS = Path(__file__).resolve().parent / "docs_static"
ASSETS = ("swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pharmacy-ledger API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="stylesheet" href="/docs/assets/index.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
# Swagger UI draws its icons as data: images, sets element styles from script (CSSOM, which
# style-src does not govern) and adds one <style> element of its own, allowed by its hash (a new
# Swagger UI may change it: tests/browser/test_api_docs_browser.py sees the refusal); it
# fetches the document and sends "try it out" requests to us.
SWAGGER_STYLE_SHA256 = "sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w="
CSP = (
    f"default-src 'none'; script-src 'self'; style-src 'self' '{SWAGGER_STYLE_SHA256}'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs_page() -> Response[str]:
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=HEADERS)


@get("/docs/init.js", include_in_schema=False, sync_to_thread=False)
def docs_init() -> Response[bytes]:
    return Response((OURS / "init.js").read_bytes(), media_type="text/javascript", headers=HEADERS)


def docs_routes() -> list[Router]:
    assets = create_static_files_router(
        path="/docs/assets",
        directories=[SWAGGER_UI],
        name="docs-assets",
        include_in_schema=False,
    )
    return [Router(path="/", route_handlers=[docs_page, docs_init]), assets]
