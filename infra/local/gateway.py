"""API Gateway (HttpApi, payload format 2.0) on 127.0.0.1.

Routes come from the template. Each request becomes a real v2 event for the function that owns
the route, and the function's answer becomes the HTTP response. Errors are answered as API
Gateway answers them:

* no route: 404 ``{"message":"Not Found"}``, unless a static file answers (the console, the docs)
* past the route's throttle (the stage's token bucket: ``ThrottlingRateLimit`` tokens a second,
  at most ``ThrottlingBurstLimit`` of them; one left out is the account's, 10,000 a second and
  a burst of 5,000): 429 ``{"message":"Too Many Requests"}``
* body over 10 MB (HttpApi's payload limit): 413 ``{"message":"Request Entity Too Large"}``
* the function raised, or was throttled: 500 ``{"message":"Internal Server Error"}``
* the function timed out: 503 ``{"message":"Service Unavailable"}`` (the local cloud's rule; a
  deployed HttpApi answers 500 for a function timeout and 503 only past its own 30 s limit)

API Gateway never drops a connection: a burst of clients queues in the listen backlog, each
connection gets a thread, and callers beyond a function's concurrency wait for a process.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from infra.local.events import http_event
from infra.local.invoke import Invocation, Invoker, Outcome
from infra.local.routing import Route, RouteTable
from infra.local.stack import Throttle, Throttling

log = logging.getLogger("ordo.local.gateway")

MAX_BODY = 10 * 1024 * 1024
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

# An answer is (status, headers, body); an endpoint returns None to fall through.
Answer = tuple[int, dict[str, str], bytes]
# The local cloud's own endpoints, asked before the routes: (method, path, query, body).
LocalEndpoint = Callable[[str, str, str, bytes], Answer | None]
# Static files, asked when no route matches: (method, path).
StaticEndpoint = Callable[[str, str], Answer | None]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second; each request takes one or is throttled."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = throttle.rate
        self.capacity = float(throttle.burst)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            refill = max(0.0, now - self._last) * self.rate  # a finite rate (Throttle checks)
            self._tokens = min(self.capacity, self._tokens + refill)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog (socketserver's default is 5): a burst of clients waits to be accepted
    # instead of being refused. The kernel caps it at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        routes: list[Route],
        invoker: Invoker,
        local: LocalEndpoint | None = None,
        static: StaticEndpoint | None = None,
        *,
        throttling: Throttling | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.routes = routes
        self.route_table = RouteTable(routes)
        self.invoker = invoker
        self.local = local
        self.static = static
        throttling = throttling or Throttling()
        # One bucket per route, as the stage's route settings apply to each route on its own.
        self.buckets = {
            key: TokenBucket(throttle)
            for route in routes
            if (throttle := throttling.for_route(key := route_key(route))) is not None
        }

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def admit(self, route: Route) -> bool:
        """False when the route's throttle has no token left for this request."""
        bucket = self.buckets.get(route_key(route))
        return bucket is None or bucket.take()

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        thread.start()
        return thread


def route_key(route: Route) -> str:
    """API Gateway's name for a route, as its RouteSettings are keyed: ``GET /tasks/{task_id}``."""
    return f"{route.method} {route.path}"


class _Handler(BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, the body waits for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def __getattr__(self, name: str) -> Any:
        # Every method, including unknown ones, goes through the same route lookup.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up before the answer (a timeout on its side): nobody to tell.
            log.info("client went away before the answer: %s %s", self.command, self.path)
            self.close_connection = True
        except Exception:
            log.exception("gateway error")
            self._send_json(500, {"message": "Internal Server Error"})

    def _handle(self) -> None:
        method = self.command.upper()
        raw_path, _, query = self.path.partition("?")
        if not raw_path.startswith("/"):
            self._send_json(400, {"message": "Bad Request"})
            return
        body = self._read_body()
        if body is None:
            return
        if self.server.local is not None:
            answer = self.server.local(method, raw_path, query, body)
            if answer is not None:
                self._send(answer[0], answer[1], [], answer[2])
                return
        path = unquote(raw_path, errors="replace")
        found = self.server.route_table.match(method, path) if method in METHODS else None
        if found is None:
            static = self.server.static(method, path) if self.server.static else None
            if static is not None:
                self._send(static[0], static[1], [], static[2])
            else:
                self._send_json(404, {"message": "Not Found"})
            return
        if not self.server.admit(found.route):
            self._send_json(429, {"message": "Too Many Requests"})
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = http_event(
            method,
            raw_path,
            route=found.route.path,
            route_method=found.route.method,
            path_parameters=found.path_parameters,
            query=query,
            headers=headers,
            body=body,
            source_ip=self.client_address[0],
        )
        self._respond(self.server.invoker.invoke(found.route.target, event))

    def _read_body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            self._send_json(400, {"message": "Bad Request"})
            return None
        if length < 0:
            self._send_json(400, {"message": "Bad Request"})
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self._send_json(413, {"message": "Request Entity Too Large"})
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537).split(b";")[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                self._send_json(400, {"message": "Bad Request"})
                return None
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self._send_json(413, {"message": "Request Entity Too Large"})
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _respond(self, result: Invocation) -> None:
        if result.outcome is Outcome.TIMEOUT:
            self._send_json(503, {"message": "Service Unavailable"})
            return
        if result.outcome is not Outcome.OK:
            self._send_json(500, {"message": "Internal Server Error"})
            return
        payload = result.payload
        if not isinstance(payload, dict) or "statusCode" not in payload:
            # Payload 2.0: a bare value is a 200 JSON body.
            self._send_json(200, payload)
            return
        try:
            status = int(payload["statusCode"])
            headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
            body = payload.get("body") or ""
            content = (
                base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
            )
            cookies = [str(cookie) for cookie in payload.get("cookies") or []]
        except (TypeError, ValueError):
            log.warning("malformed function response")
            self._send_json(500, {"message": "Internal Server Error"})
            return
        self._send(status, headers, cookies, content)

    def _send_json(self, status: int, body: Any) -> None:
        content = json.dumps(body, separators=(",", ":")).encode()
        self._send(status, {"content-type": "application/json"}, [], content)

    def _send(self, status: int, headers: dict[str, str], cookies: list[str], body: bytes) -> None:
        self.send_response(status)
        headers = headers | {
            "content-length": str(len(body)),
            "apigw-requestid": uuid.uuid4().hex[:16],
        }
        for name, value in headers.items():
            if name not in ("connection", "transfer-encoding"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
