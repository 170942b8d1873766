"""The console (``web/``) and the API docs, served from disk by the local cloud.

* ``/`` and the console's files: read from ``web/`` on every request, so an edit shows on the next
  reload. They carry the security headers the deployed CloudFront distribution sets.
* ``/config.json``: the console's settings. Locally the API is on the same origin.
* ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts from ``web/node_modules``
  (pinned in ``web/package.json``), never from a CDN, so they work offline.

API routes keep precedence: the gateway asks here only when no route matches.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from infra.console import CONTENT_TYPES, is_console_path
from infra.local.stack import ROOT

WEB = ROOT / "web"
NODE_MODULES = WEB / "node_modules"
ASSETS = {
    "swagger-ui": NODE_MODULES / "swagger-ui-dist",
    "redoc": NODE_MODULES / "redoc" / "bundles",
}
ASSET_PREFIX = "/_docs/"

# The same policy as the template's ConsoleResponseHeadersPolicy, with the API on this origin.
CONSOLE_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
# The docs pages: their own inline starter script, and nothing from another origin (ReDoc's
# footer asks cdn.redoc.ly for its logo; this policy keeps that request from leaving).
DOCS_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
}
MISSING_ASSETS = (
    "The docs' assets are not installed: run `make dev` (it runs `npm ci` in web/), "
    "or `cd web && npm ci`."
)

Answer = tuple[int, dict[str, str], bytes]


def _content_type(path: Path) -> str:
    """The type the deployed console sends (``infra.console``), else the usual guess."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _file_under(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it is a file inside ``root`` (no ``..``, no symlink out)."""
    if "\\" in relative or "\0" in relative:
        return None
    candidate = (root / relative).resolve()
    base = root.resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


class StaticFiles:
    def __init__(self, web: Path = WEB) -> None:
        self.web = web
        self.assets = {name: web / path.relative_to(WEB) for name, path in ASSETS.items()}

    def answer(self, method: str, path: str) -> Answer | None:
        """The console, the docs or their assets for a GET/HEAD; None when none is there."""
        if method not in ("GET", "HEAD"):
            return None
        if path == "/docs":
            return self._docs_page(_swagger_html())
        if path == "/redoc":
            return self._docs_page(_redoc_html())
        if path.startswith(ASSET_PREFIX):
            return self._asset(path.removeprefix(ASSET_PREFIX))
        if path == "/config.json":
            return 200, {"content-type": "application/json"} | CONSOLE_HEADERS, _CONFIG
        return self._console(path)

    def _console(self, path: str) -> Answer | None:
        relative = "index.html" if path == "/" else path.lstrip("/")
        if not is_console_path(relative.split("/")):
            return None
        found = _file_under(self.web, relative)
        if found is None:
            return None
        headers = {"content-type": _content_type(found)} | CONSOLE_HEADERS
        return 200, headers, found.read_bytes()

    def _asset(self, relative: str) -> Answer | None:
        name, _, rest = relative.partition("/")
        root = self.assets.get(name)
        if root is None:
            return None
        if not root.is_dir():
            return _missing()
        found = _file_under(root, rest)
        if found is None:
            return None
        headers = {"content-type": _content_type(found), "cache-control": "max-age=3600"}
        return 200, headers, found.read_bytes()

    def _docs_page(self, html: str) -> Answer:
        if not all(root.is_dir() for root in self.assets.values()):
            return _missing()
        return 200, DOCS_HEADERS, html.encode()


_CONFIG = json.dumps({"apiBase": ""}).encode()


def _missing() -> Answer:
    body = json.dumps({"message": MISSING_ASSETS}).encode()
    return 503, {"content-type": "application/json"}, body


def _swagger_html() -> str:
    from fastapi.openapi.docs import get_swagger_ui_html

    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="ordo API",
        swagger_js_url=f"{ASSET_PREFIX}swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSET_PREFIX}swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{ASSET_PREFIX}swagger-ui/favicon-32x32.png",
    )
    return bytes(page.body).decode()


def _redoc_html() -> str:
    from fastapi.openapi.docs import get_redoc_html

    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="ordo API",
        redoc_js_url=f"{ASSET_PREFIX}redoc/redoc.standalone.js",
        redoc_favicon_url=f"{ASSET_PREFIX}swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    return bytes(page.body).decode()
