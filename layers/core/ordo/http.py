"""FastAPI glue shared by every API function: one app factory, one error mapping, one entry point.

Every error a client sees is JSON with a ``detail`` field. The routes' dependencies (tables,
queue, the signed-in user) are in ``ordo.deps``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordo import errors
from ordo.observability import logger, observed, ready
from ordo.validation import json_body_problem, request_problem

# The one place domain errors become HTTP statuses. Lookup walks the class's MRO.
STATUS_OF: dict[type[errors.OrdoError], int] = {
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 422,
    errors.TooManyRequests: 429,
    errors.UpstreamFailed: 502,
    errors.Unavailable: 503,
}


def status_of(error: errors.OrdoError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def describe_validation_errors(problems: Sequence[Any]) -> str:
    """One readable line, e.g. ``body.data: data is 301 characters; ... at most 300``."""
    parts = []
    for problem in problems:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "Invalid request"


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.OrdoError)
    headers = {}
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.TooManyRequests) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unavailable):
        headers["Retry-After"] = "1"
    body = {"detail": exc.detail, **exc.extra}
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": list(p.get("loc", ())), "msg": p.get("msg"), "type": p.get("type")}
        for p in exc.errors()
    ]
    return JSONResponse(
        {"detail": describe_validation_errors(problems), "errors": problems}, status_code=422
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=dict(exc.headers or {})
    )


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    from ordo.retry import describe, is_transient

    if is_transient(exc):  # throttled, or DynamoDB/SQS unreachable past the SDK's retries
        logger.warning("dependency unavailable", error=describe(exc))
        return JSONResponse(
            {"detail": "A service ordo depends on is busy or unreachable; please retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    logger.exception("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


class AccessLog:
    """One log line per request, with its status and duration.

    Plain ASGI: ``@app.middleware("http")`` (Starlette's ``BaseHTTPMiddleware``) costs about
    a millisecond a request in task groups and streams.
    """

    def __init__(self, app: ASGIApp, settle: Callable[[], None]) -> None:
        self.app = app
        self.settle = settle  # ordo.boot's: the first request ends the cold start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.settle()
        started = time.perf_counter()
        context = scope.get("aws.context")
        if context is not None:
            logger.set_correlation_id(getattr(context, "aws_request_id", None))
        status = 500  # unless the app answers: an unhandled error is answered outside us

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


class InputGuard:
    """Refuses, with a 422, what no route can take: a path, query string or form that is not
    UTF-8, and a JSON body that is not UTF-8, holds a lone surrogate or nests too deep
    (``ordo.validation``). It reads the body before FastAPI does, and hands it on unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = request_problem(scope["path"], scope.get("query_string", b""))
        chunks: list[bytes] = []
        more = problem is None
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and problem is None:
            problem = _body_problem(dict(scope["headers"]).get(b"content-type", b""), body)
        if problem is not None:
            await JSONResponse({"detail": problem}, status_code=422)(scope, receive, send)
            return
        if chunks:
            request: Message = {"type": "http.request", "body": body, "more_body": False}
            receive = _replay([request], None, receive)
        await self.app(scope, receive, send)


def _body_problem(content_type: bytes, body: bytes) -> str | None:
    kind = content_type.split(b";")[0].strip().lower()
    if kind == b"application/x-www-form-urlencoded":
        return request_problem("", body)
    if not kind or kind.endswith(b"/json") or kind.endswith(b"+json"):  # as FastAPI parses
        return json_body_problem(body)
    return None


def _replay(messages: list[Message], last: Message | None, receive: Receive) -> Receive:
    pending = [*messages, *([last] if last else [])]

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def api_app(title: str) -> FastAPI:
    """A FastAPI app for one Lambda function, with ordo's error mapping and access log.

    Swagger UI is served by the local cloud over the merged document of every function, so the
    per-function app only keeps ``/openapi.json`` (not routed by API Gateway).
    """
    from ordo import boot  # not at our import: it reads the environment (the handler's first)

    ready()  # the logger and the metrics, from this function's environment, in its init
    app = FastAPI(title=f"ordo {title}", version="0.1.0", docs_url=None, redoc_url=None)
    app.add_exception_handler(errors.OrdoError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(InputGuard)
    app.add_middleware(AccessLog, settle=boot.settle)
    return app


type Event = dict[str, Any]
type LambdaHandler = Callable[[Event, Any], Event]


def lambda_handler(
    app: FastAPI, *, schedule: Callable[[Event], Event] | None = None
) -> LambdaHandler:
    """The function's ``handler``: ``app`` through Mangum, the invocation's context in every log
    line, and the metrics it added flushed once at its end (none added, nothing printed).

    ``schedule``, if given, answers EventBridge's scheduled events instead of ``app``.
    """
    from ordo import boot

    http = Mangum(app, lifespan="off")

    @observed
    def handler(event: Event, context: Any) -> Event:
        if schedule is not None and event.get("detail-type") == "Scheduled Event":
            boot.settle()  # the first request ends the cold start; this one passes no AccessLog
            return schedule(event)
        answer: Event = http(event, context)
        return answer

    return handler
