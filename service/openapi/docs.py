"""/docs (Swagger UI) and /redoc served from the packaged copies that `fastapi-offline` ships, under /docs-assets:
no CDN, so the pages work on a network without the internet (and the security headers' policy allows them)."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
log = logging.getLogger("ssa.service")


def assets_dir() -> Path | None:
    """The folder of the packaged Swagger UI and ReDoc files; None when the package is missing."""
    try:
        folder = Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if folder.is_dir() else None


def mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc (create the app with docs_url=None, redoc_url=None). Without the
    packaged files (an install that lacks fastapi-offline) there are no docs pages, only /openapi.json: never a
    page that loads code from a CDN."""
    folder = assets_dir()
    if folder is None:
        log.warning("fastapi-offline is not installed: /docs and /redoc are off (the schema is at /openapi.json)")
        return
    app.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")
    schema = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=schema, title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=schema, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js", redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)
