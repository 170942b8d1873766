"""ordo's real handlers in this process against moto, with resources made from template.yaml.

``InProcessStack`` plays API Gateway (real v2 events through the template's routes, matched by
the local cloud's ``routing``) and the SQS event source mappings: the local cloud's own
``SqsEventSource``, driven one step at a time (``poll_once``) with the local clock, so the
integration tests exercise the emulator that ``make dev`` runs. Functions run in this process
(``infra.local.inprocess``), so tests can reach into a handler's module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import boto3

from infra.local import moto_fidelity
from infra.local.clock import LocalClock
from infra.local.esm import SqsEventSource
from infra.local.events import http_event
from infra.local.inprocess import InProcessFunctions
from infra.local.invoke import Invocation, Outcome
from infra.local.motoserver import InProcessReceive
from infra.local.routing import Route, RouteTable
from infra.local.stack import Function, Stack


def reset_ordo_caches() -> None:
    """What a new Lambda container starts with: no settings read, no clients, no secret.

    ordo's botocore session stays: it holds no state of a test (credentials and region come
    from the environment each client reads), only the parsed service models, which take about
    0.1 s to parse again for every test."""
    from ordo import aws, settings, wiring

    settings.settings.cache_clear()
    for module in (aws, wiring):
        for value in vars(module).values():
            if (
                getattr(value, "__module__", None) == module.__name__
                and hasattr(value, "cache_clear")
                and value is not aws._session
            ):
                value.cache_clear()


class InvocationFailed(AssertionError):
    """A direct ``invoke`` whose function did not answer: it raised, timed out or was throttled."""

    def __init__(self, logical_id: str, result: Invocation) -> None:
        super().__init__(f"{logical_id}: {result.outcome}: {result.error}")
        self.result = result


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
class InProcessStack:
    """The stack on moto, its functions run in this process, its event sources run by hand."""

    stack: Stack
    functions: dict[str, Function] = field(init=False)
    invoker: InProcessFunctions = field(init=False)
    # The event source mappings' clock: ``expire`` moves it past a visibility timeout.
    clock: LocalClock = field(default_factory=LocalClock, init=False)
    _event_sources: dict[str, SqsEventSource] = field(default_factory=dict, init=False)
    # The access token ``request`` sends unless told otherwise (``token=None``: anonymous).
    token: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.functions = self.stack.functions()
        self.invoker = InProcessFunctions(self.functions)
        self.sqs = boto3.client("sqs")
        self.dynamodb = boto3.client("dynamodb")
        self.routes = RouteTable(
            Route(method, path, lid)
            for lid, fn in self.functions.items()
            for method, path in fn.http_routes
        )

    def module(self, logical_id: str) -> ModuleType:
        return self.invoker.module(logical_id)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """The function's answer to ``event``; ``InvocationFailed`` if it gave none."""
        result = self.invoker.invoke(logical_id, event)
        if result.outcome is not Outcome.OK:
            raise InvocationFailed(logical_id, result)
        return result.payload

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
        found = self.routes.match(method, path)
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
            route_method=found.route.method,
            path_parameters=found.path_parameters,
            query=query,
            headers=all_headers,
            body=body,
            source_ip=source_ip,
        )
        result = self.invoker.invoke(found.route.target, event)
        # What API Gateway answers for a function that gave no answer (infra/local/gateway.py).
        if result.outcome is Outcome.TIMEOUT:
            return Response(503, {}, {"message": "Service Unavailable"})
        if result.outcome is not Outcome.OK:
            return Response(500, {}, {"message": "Internal Server Error"})
        raw = result.payload
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

    # --- SQS event source mappings --------------------------------------------------------

    def queue_of(self, logical_id: str) -> tuple[str, str]:
        queue = self.functions[logical_id].queue_logical_id
        assert queue
        return self.stack.queue_url(queue), self.stack.physical[queue]["Arn"]

    def event_source(self, logical_id: str = "WorkerFunction") -> SqsEventSource:
        """The function's SQS event source mapping, made as the local cloud makes it."""
        if logical_id not in self._event_sources:
            _, arn = self.queue_of(logical_id)
            self._event_sources[logical_id] = SqsEventSource.from_stack(
                self.stack,
                self.functions[logical_id],
                self.sqs,
                self.invoker,
                self.clock,
                signals=moto_fidelity.message_signals,
                receive=InProcessReceive(arn),
            )
        return self._event_sources[logical_id]

    def poll_once(self, logical_id: str = "WorkerFunction") -> list[str]:
        """One step of the mapping: at most one batch delivered. Returns the ids of the
        messages it handed back to the queue, which come back once ``expire`` is called."""
        delivery = self.event_source(logical_id).poll_once()
        return delivery.handed_back if delivery is not None else []

    def expire(self, logical_id: str = "WorkerFunction") -> None:
        """Let the queue's visibility timeout pass: the mapping's clock moves on past it."""
        self.clock.advance(self.event_source(logical_id).visibility_timeout)

    def drain(self, logical_id: str = "WorkerFunction", max_batches: int = 500) -> int:
        """Poll until the queue is empty, retrying failures at once. Returns batches delivered."""
        source = self.event_source(logical_id)
        delivered = 0
        for _ in range(max_batches):
            delivery = source.poll_once()
            if delivery is not None:
                delivered += 1
            if source.awaiting_visibility:
                self.expire(logical_id)
            elif delivery is None and not self.queue_depth(logical_id):
                return delivered
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
