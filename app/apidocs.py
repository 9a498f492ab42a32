"""/docs (Swagger UI) and /redoc from files installed with the app, not from a CDN: a GPU box in
a lab is often offline. The JavaScript and CSS come from the `fastapi-offline` package; ReDoc's
script is served with the one outside address it holds (Redocly's logo on their CDN) replaced by
an empty image, so the page asks nothing of the internet (the "API docs by Redocly" link stays)."""
from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static-docs"
REDOC_JS_URL = f"{ASSETS_URL}/redoc.offline.js"  # a route: matched before the static mount
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
BLANK_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"

router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    """Swagger UI's and ReDoc's files, for `app.mount(ASSETS_URL, ...)`."""
    return StaticFiles(directory=ASSETS_DIR)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(openapi_url=f"{root}{request.app.openapi_url}",
                               title=f"{request.app.title} - API",
                               swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                               swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                               swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png")


@functools.cache
def redoc_script() -> bytes:
    return (ASSETS_DIR / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, BLANK_IMAGE)


@router.get(REDOC_JS_URL)
def redoc_js() -> Response:
    return Response(redoc_script(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(openapi_url=f"{root}{request.app.openapi_url}",
                          title=f"{request.app.title} - API reference",
                          redoc_js_url=f"{root}{REDOC_JS_URL}",
                          redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                          with_google_fonts=False)
