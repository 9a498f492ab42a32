"""/docs (Swagger UI) and /redoc from files installed with the app, not from a CDN: a GPU box in
a lab is often offline. The JavaScript and CSS come from the `fastapi-offline` package."""
from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static-docs"

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


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(openapi_url=f"{root}{request.app.openapi_url}",
                          title=f"{request.app.title} - API reference",
                          redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                          redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                          with_google_fonts=False)
