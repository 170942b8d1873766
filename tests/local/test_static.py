"""The local cloud's static files: the console, the docs and their assets, behind the API routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local.gateway import Gateway
from infra.local.invoke import Invocation, Outcome
from infra.local.routing import Route
from infra.local.static import StaticFiles


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    (root / "app").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "app" / "main.js").write_text("export const ready = true;")
    (root / "package.json").write_text("{}")
    (root / ".npmrc").write_text("secret=1")
    (root / "node_modules" / "swagger-ui-dist").mkdir(parents=True)
    (root / "node_modules" / "swagger-ui-dist" / "swagger-ui.css").write_text("body{}")
    (root / "node_modules" / "redoc" / "bundles").mkdir(parents=True)
    (root / "node_modules" / "redoc" / "bundles" / "redoc.standalone.js").write_text("//")
    (tmp_path / "outside.txt").write_text("not served")
    return root


def test_the_console_is_served_with_its_security_headers(web: Path) -> None:
    status, headers, body = StaticFiles(web).answer("GET", "/") or (0, {}, b"")
    assert status == 200
    assert body.startswith(b"<!doctype html>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self';" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    module = StaticFiles(web).answer("GET", "/app/main.js")
    assert module is not None
    assert module[1]["content-type"] == "text/javascript; charset=utf-8"


def test_an_edited_file_is_served_at_once(web: Path) -> None:
    files = StaticFiles(web)
    (web / "app" / "main.js").write_text("export const ready = false;")
    answer = files.answer("GET", "/app/main.js")
    assert answer is not None
    assert answer[2] == b"export const ready = false;"
    assert answer[1]["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/package.json",
        "/.npmrc",
        "/node_modules/redoc/bundles/redoc.standalone.js",
        "/../outside.txt",
        "/app/../../outside.txt",
        "/missing.js",
        "/app",
    ],
)
def test_what_is_not_the_app_is_not_served(web: Path, path: str) -> None:
    assert StaticFiles(web).answer("GET", path) is None


def test_only_reads_are_answered(web: Path) -> None:
    assert StaticFiles(web).answer("POST", "/") is None
    assert StaticFiles(web).answer("HEAD", "/") is not None


def test_config_points_the_console_at_this_origin(web: Path) -> None:
    answer = StaticFiles(web).answer("GET", "/config.json")
    assert answer is not None
    assert json.loads(answer[2]) == {"apiBase": ""}


def test_the_docs_load_their_assets_from_disk(web: Path) -> None:
    files = StaticFiles(web)
    for page, asset in [("/docs", "swagger-ui/swagger-ui"), ("/redoc", "redoc/redoc.standalone")]:
        answer = files.answer("GET", page)
        assert answer is not None
        html = answer[2].decode()
        assert f"/_docs/{asset}" in html
        assert "cdn.jsdelivr.net" not in html
        assert "fonts.googleapis.com" not in html
        assert "img-src 'self' data:;" in answer[1]["content-security-policy"]
    css = files.answer("GET", "/_docs/swagger-ui/swagger-ui.css")
    assert css is not None
    assert css[2] == b"body{}"
    assert files.answer("GET", "/_docs/swagger-ui/../../package.json") is None
    assert files.answer("GET", "/_docs/other/x.js") is None


def test_missing_assets_say_how_to_install_them(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("x")
    answer = StaticFiles(tmp_path).answer("GET", "/docs")
    assert answer is not None
    assert answer[0] == 503
    assert "npm ci" in json.loads(answer[2])["message"]


class _Echo:
    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        body = json.dumps({"function": logical_id, "path": event["rawPath"]})
        return Invocation(Outcome.OK, {"statusCode": 200, "body": body})


@pytest.fixture
def gateway(web: Path) -> Iterator[str]:
    (web / "health").write_text("a file named like a route")
    routes = [Route("GET", "/health", "HealthFunction"), Route("POST", "/tasks", "Submit")]
    server = Gateway(("127.0.0.1", 0), routes, _Echo(), static=StaticFiles(web).answer)
    server.serve_in_thread()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def test_api_routes_keep_precedence_over_files(gateway: str) -> None:
    assert httpx.get(f"{gateway}/health").json() == {
        "function": "HealthFunction",
        "path": "/health",
    }
    page = httpx.get(f"{gateway}/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    missing = httpx.get(f"{gateway}/tasks")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
