"""Runs ordo's real handlers in-process against moto, with resources made from template.yaml.

``Cloud`` plays API Gateway (real v2 events through the template's routes) and the SQS event
source mapping (real SQS events, BatchSize from the template, batchItemFailures honoured).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import boto3

from infra.local.context import LambdaContext
from infra.local.events import http_event, sqs_event
from infra.local.routing import Route, match
from infra.local.stack import Function, Stack


def reset_ordo_caches() -> None:
    """What a new Lambda container starts with: no settings read, no clients, no secret."""
    from ordo import aws, settings, wiring

    settings.settings.cache_clear()
    for module in (aws, wiring):
        for value in vars(module).values():
            if getattr(value, "__module__", None) == module.__name__ and hasattr(
                value, "cache_clear"
            ):
                value.cache_clear()


def _ensure_event_loop() -> None:
    """Mangum asks asyncio for the thread's event loop; only the main thread has one."""
    import asyncio

    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def load_handler_module(function: Function) -> ModuleType:
    """Import a function's handler module as a cold start would, under a unique name."""
    module_file, _ = function.handler.rsplit(".", 1)
    name = f"ordo_function_{function.logical_id}_{id(function)}"
    spec = importlib.util.spec_from_file_location(name, function.code_uri / f"{module_file}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Account:
    id: str
    username: str
    password: str
    access_token: str
    refresh_token: str


class _Unset:
    pass


AS_CURRENT_USER = _Unset()
PASSWORD = "Corr3ct-horse"  # a test account's password


@dataclass
class Cloud:
    stack: Stack
    functions: dict[str, Function] = field(init=False)
    _modules: dict[str, ModuleType] = field(default_factory=dict, init=False)
    _in_flight: list[dict[str, Any]] = field(default_factory=list, init=False)
    # The access token ``request`` sends unless told otherwise (``token=None``: anonymous).
    token: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.functions = self.stack.functions()
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        self.routes = [
            Route(method, path, lid)
            for lid, fn in self.functions.items()
            for method, path in fn.http_routes
        ]

    def module(self, logical_id: str) -> ModuleType:
        if logical_id not in self._modules:
            self._modules[logical_id] = load_handler_module(self.functions[logical_id])
        return self._modules[logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        _ensure_event_loop()  # a test may call the API from a worker's runner thread
        fn = self.functions[logical_id]
        context = LambdaContext(fn.logical_id, fn.timeout, fn.memory)
        handler: Callable[..., Any] = getattr(self.module(logical_id), fn.handler.split(".")[-1])
        return handler(event, context)

    # --- API Gateway -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
        token: str | _Unset | None = AS_CURRENT_USER,
        source_ip: str = "127.0.0.1",
    ) -> Response:
        found = match(self.routes, method, path)
        if found is None:
            return Response(404, {}, {"message": "Not Found"})
        bearer = self.token if isinstance(token, _Unset) else token
        all_headers = {"host": "api.local"} | (headers or {})
        if bearer:
            all_headers.setdefault("authorization", f"Bearer {bearer}")
        if json_body is not None:
            body = json.dumps(json_body)
            all_headers.setdefault("content-type", "application/json")
        event = http_event(
            method,
            path,
            route=found.route.path,
            path_parameters=found.path_parameters,
            query=query,
            headers=all_headers,
            body=body,
            source_ip=source_ip,
        )
        raw = self.invoke(found.route.target, event)
        text = raw.get("body") or ""
        return Response(
            raw["statusCode"], raw.get("headers", {}), json.loads(text) if text else None
        )

    # --- accounts ------------------------------------------------------------------------

    def sign_up(self, username: str, *, admin: bool = False, password: str = PASSWORD) -> Account:
        """A new account, signed in. An admin is made as ``python -m ordo.admin`` makes one."""
        email = f"{username}@example.com"
        if admin:
            from ordo.accounts import RegisterRequest, ensure_admin
            from ordo.clock import utcnow
            from ordo.wiring import user_table

            request = RegisterRequest(email=email, username=username, password=password)
            ensure_admin(user_table(), request, utcnow())
        else:
            body = {"email": email, "username": username, "password": password}
            registered = self.request("POST", "/auth/register", body, token=None)
            assert registered.status == 201, registered.body
        return self.sign_in(username, password)

    def sign_in(self, username: str, password: str = PASSWORD) -> Account:
        body = {"username": username, "password": password}
        response = self.request("POST", "/auth/login/json", body, token=None)
        assert response.status == 200, response.body
        me = self.request("GET", "/auth/me", token=response.body["access_token"])
        return Account(
            id=me.body["id"],
            username=username,
            password=password,
            access_token=response.body["access_token"],
            refresh_token=response.body["refresh_token"],
        )

    # --- SQS event source mapping ----------------------------------------------------------

    def queue_of(self, logical_id: str) -> tuple[str, str]:
        queue = self.functions[logical_id].queue_logical_id
        assert queue
        return self.stack.queue_url(queue), self.stack.physical[queue]["Arn"]

    def poll_once(self, logical_id: str = "WorkerFunction") -> list[str]:
        """Deliver one batch to the function; returns the message ids it reported as failed.

        Successes are deleted, as Lambda does. Failures stay in flight until ``expire``.
        """
        fn = self.functions[logical_id]
        url, arn = self.queue_of(logical_id)
        received = self._receive(url, fn.batch_size)
        if not received:
            return []
        # In flight until deleted; a crash (BaseException) leaves the whole batch here.
        self._in_flight = list(received)
        try:
            response = self.invoke(logical_id, sqs_event(received, arn)) or {}
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:
            # An invocation error fails the whole batch, as in Lambda.
            failed = {message["MessageId"] for message in received}
        done = [m for m in received if m["MessageId"] not in failed]
        for message in done:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        self._in_flight = [m for m in received if m["MessageId"] in failed]
        return [m["MessageId"] for m in received if m["MessageId"] in failed]

    def _receive(self, url: str, batch_size: int) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=batch_size,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return cast(list[dict[str, Any]], messages)

    def expire(self, logical_id: str = "WorkerFunction") -> None:
        """Let the visibility timeout of failed messages pass, keeping their FIFO order."""
        url, _ = self.queue_of(logical_id)
        for message in self._in_flight:
            self.sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        self._in_flight = []

    def drain(self, logical_id: str = "WorkerFunction", max_batches: int = 500) -> int:
        """Poll until the queue is empty, retrying failures at once. Returns batches delivered."""
        for batch in range(max_batches):
            failed = self.poll_once(logical_id)
            if failed:
                self.expire(logical_id)
            elif not self.queue_depth(logical_id):
                return batch
        raise AssertionError("queue did not drain")

    def queue_depth(self, logical_id: str = "WorkerFunction") -> int:
        url, _ = self.queue_of(logical_id)
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dead_letters(self) -> list[dict[str, Any]]:
        url = self.stack.queue_url("JobsDeadLetterQueue")
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return cast(list[dict[str, Any]], messages)
