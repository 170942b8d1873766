"""The local cloud: template.yaml on one machine, without Docker.

moto's server stands in for the AWS APIs. Around it run an API Gateway, warm function
processes, an SQS event source mapping per queue trigger, the template's schedules, a TTL
sweeper and a code watcher, all built from the transformed template.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from infra.local import moto_fidelity
from infra.local.clock import LocalClock
from infra.local.functions import CodeWatcher, FunctionHost, Functions
from infra.local.gateway import Answer, Gateway
from infra.local.routing import Route
from infra.local.stack import TEMPLATE, Function, Stack
from infra.local.static import StaticFiles

if TYPE_CHECKING:
    from ordo.tokens import SigningKey

log = logging.getLogger("ordo.local")

REGION = "us-east-1"
SIGNING_KEY_PARAMETER = "JwtSigningKeyParameterName"
PUBLIC_KEYS_PARAMETER = "JwtPublicKeysParameterName"
TIMEOUTS_VARIABLE = "ORDO_LOCAL_TIMEOUTS"
JSON = {"content-type": "application/json"}
# Passed to every function, as Lambda's own environment would be.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")


def store_stack_signing_key(ssm: Any, stack: Stack, key: SigningKey) -> None:
    """``key`` in the two SSM parameters the stack's template names for the token keys."""
    from ordo.keyring import store_signing_key

    store_signing_key(
        ssm,
        key,
        private_name=stack.parameters[SIGNING_KEY_PARAMETER],
        public_name=stack.parameters[PUBLIC_KEYS_PARAMETER],
    )


@dataclass
class LocalCloud:
    host: str = "127.0.0.1"
    port: int = 3000
    aws_port: int = 0
    template: Path = TEMPLATE
    parameters: dict[str, str] = field(default_factory=dict)
    env_overrides: dict[str, str] = field(default_factory=dict)
    warm: bool = True
    watch: bool = True
    # Function timeouts that replace the template's, by logical id (ORDO_LOCAL_TIMEOUTS).
    timeouts: dict[str, int] = field(default_factory=dict)

    clock: LocalClock = field(default_factory=LocalClock, init=False)
    stack: Stack = field(init=False)
    functions: Functions = field(init=False)
    gateway: Gateway = field(init=False)
    aws_url: str = field(init=False, default="")
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _moto: Any = field(default=None, init=False)
    _openapi: tuple[int, dict[str, Any]] | None = field(default=None, init=False)
    _watcher: CodeWatcher | None = field(default=None, init=False)
    event_sources: list[Any] = field(default_factory=list, init=False)
    scheduler: Any = field(default=None, init=False)
    ttl: Any = field(default=None, init=False)
    admin: LocalAdmin = field(default_factory=lambda: LocalAdmin.from_env(os.environ))

    @staticmethod
    def overrides_from(environ: Mapping[str, str]) -> dict[str, str]:
        """``ORDO_*`` variables of the starting shell override every function's template value."""
        ignored = {"ORDO_PORT", "ORDO_HOST", "ORDO_AWS_PORT", "ORDO_API_URL", TIMEOUTS_VARIABLE}
        return {
            k: v
            for k, v in environ.items()
            if k.startswith("ORDO_") and k not in ignored and not k.startswith("ORDO_ADMIN_")
        }

    # --- start and stop ----------------------------------------------------------------

    def start(self) -> None:
        self.stack = Stack.load(region=REGION, overrides=self.parameters, path=self.template)
        self._start_moto()
        dynamodb, sqs = self._client("dynamodb"), self._client("sqs")
        self.stack.provision(dynamodb, sqs)
        if SIGNING_KEY_PARAMETER in self.stack.parameters:  # ordo's own template, not a fixture
            self._store_signing_keys()
            self.admin.ensure(dynamodb, self.stack.physical["JobsTable"]["Ref"])
        definitions = self._with_timeouts(self.stack.functions())
        if self.watch:
            self._watcher = CodeWatcher([self.stack.base / "functions", self.stack.base / "layers"])
            self._spawn("code-watcher", self._watcher.run)
        watcher = self._watcher
        generation = (lambda: watcher.generation) if watcher else None
        self.functions = Functions(
            {
                lid: FunctionHost(fn, self._environment(fn), generation=generation)
                for lid, fn in definitions.items()
            }
        )
        routes = [
            Route(method, path, lid)
            for lid, fn in definitions.items()
            for method, path in fn.http_routes
        ]
        static = StaticFiles()
        self.gateway = Gateway(
            (self.host, self.port), routes, self.functions, self._local, static.answer
        )
        self.port = int(self.gateway.server_address[1])
        self._threads.append(self.gateway.serve_in_thread())
        self._start_event_sources(definitions, sqs, dynamodb)
        if self.warm:
            for host in self.functions.hosts.values():
                self._spawn(f"warm-{host.name}", lambda _stop, h=host: h.warm())

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        moto_fidelity.apply()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.aws_url = f"http://{host}:{port}"

    @staticmethod
    def timeouts_from(environ: Mapping[str, str]) -> dict[str, int]:
        """``ORDO_LOCAL_TIMEOUTS=WorkerFunction=40,Other=5``: try a shorter (or longer) timeout
        locally without editing the template. ``ValueError`` names what is wrong."""
        timeouts: dict[str, int] = {}
        for entry in filter(
            None, (e.strip() for e in environ.get(TIMEOUTS_VARIABLE, "").split(","))
        ):
            name, _, seconds = entry.partition("=")
            if not name or not seconds.isdigit() or not 1 <= int(seconds) <= 900:
                raise ValueError(
                    f"{TIMEOUTS_VARIABLE}: {entry!r} is not FUNCTION=SECONDS (1 to 900)"
                )
            timeouts[name.strip()] = int(seconds)
        return timeouts

    def _with_timeouts(self, definitions: dict[str, Function]) -> dict[str, Function]:
        unknown = sorted(set(self.timeouts) - set(definitions))
        if unknown:
            raise ValueError(f"{TIMEOUTS_VARIABLE}: no such function: {', '.join(unknown)}")
        return {
            lid: replace(fn, timeout=self.timeouts[lid]) if lid in self.timeouts else fn
            for lid, fn in definitions.items()
        }

    def _store_signing_keys(self) -> None:
        """As deployed: the private key in a SecureString (the Auth function reads it) and the
        public keys in a String (every API function reads them). A fresh key per start, so
        tokens never outlive the local cloud; ``ORDO_JWT_SIGNING_KEY`` (a private JWK) fixes it."""
        from ordo.tokens import SigningKey

        given = self.env_overrides.get("ORDO_JWT_SIGNING_KEY")
        key = SigningKey.from_jwk(given) if given else SigningKey.generate()
        store_stack_signing_key(self._client("ssm"), self.stack, key)

    def _client(self, service: str) -> Any:
        from botocore.session import get_session

        return get_session().create_client(
            service,
            region_name=REGION,
            endpoint_url=self.aws_url,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any key
        )

    def _environment(self, function: Function) -> dict[str, str]:
        inherited = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        lambda_env = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": self.stack.physical[function.logical_id]["Ref"],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "PYTHONUNBUFFERED": "1",
        }
        overrides = dict(self.env_overrides)
        if "ORDO_JWT_SIGNING_KEY_PARAMETER" not in function.environment:
            overrides.pop("ORDO_JWT_SIGNING_KEY", None)  # the private key: the Auth function's
        return inherited | lambda_env | function.environment | overrides

    def _start_event_sources(
        self, definitions: dict[str, Function], sqs: Any, dynamodb: Any
    ) -> None:
        from infra.local.esm import SqsEventSource
        from infra.local.schedule import Scheduler
        from infra.local.ttl import TtlSweeper

        for function in definitions.values():
            if function.queue_logical_id:
                source = SqsEventSource.from_stack(
                    self.stack, function, sqs, self.functions, self.clock
                )
                self.event_sources.append(source)
                self._spawn(f"esm-{function.logical_id}", source.run)
        self.scheduler = Scheduler.from_stack(self.stack, self.functions, self.clock)
        self._spawn("scheduler", self.scheduler.run)
        self.ttl = TtlSweeper.from_stack(self.stack, dynamodb, self.clock)
        self._spawn("ttl-sweeper", self.ttl.run)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if hasattr(self, "gateway"):
            self.gateway.shutdown()
            self.gateway.server_close()
        if hasattr(self, "functions"):
            self.functions.close()
        for thread in self._threads:
            thread.join(timeout=2)
        if self._moto is not None:
            self._moto.stop()

    # --- what the gateway serves itself ------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def openapi(self) -> dict[str, Any]:
        from infra.local.openapi import merge

        generation = self._watcher.generation if self._watcher else 0
        if self._openapi is None or self._openapi[0] != generation:
            documents = [
                doc
                for host in self.functions.hosts.values()
                if host.function.http_routes and (doc := host.openapi())
            ]
            self._openapi = (generation, merge(documents))
        return self._openapi[1]

    def _local(  # noqa: PLR0911 - one answer per local endpoint
        self, method: str, path: str, query: str, body: bytes
    ) -> Answer | None:
        del body
        if path == "/openapi.json" and method == "GET":
            return self._json(self.openapi())
        if not path.startswith("/_local/"):
            return None
        if path == "/_local/health":
            return self._json({"status": "ok", "aws_endpoint": self.aws_url})
        if path == "/_local/clock" and method == "GET":
            return self._json({"time": self.clock.time(), "now": self.clock.now().isoformat()})
        if path == "/_local/clock/advance" and method == "POST":
            try:
                seconds = float(parse_qs(query).get("seconds", ["0"])[0])
            except ValueError:
                return 400, JSON, b'{"message":"seconds must be a number"}'
            self.clock.advance(seconds)
            return self._json({"time": self.clock.time(), "now": self.clock.now().isoformat()})
        if path == "/_local/functions" and method == "GET":
            return self._json({lid: host.pids() for lid, host in self.functions.hosts.items()})
        return 404, JSON, b'{"message":"Not Found"}'

    def _admin_line(self) -> list[str]:
        if SIGNING_KEY_PARAMETER not in self.stack.parameters:
            return []
        return [f"  Admin       {self.admin.username} / {self.admin.shown_password}"]

    @staticmethod
    def _json(value: Any) -> Answer:
        return 200, JSON, json.dumps(value).encode()

    # --- banner ------------------------------------------------------------------------

    def banner(self) -> str:
        lines = [
            "",
            "ordo local cloud — template.yaml without Docker",
            f"  API         {self.url}",
            f"  Console     {self.url}/",
            f"  Docs        {self.url}/docs  (ReDoc: {self.url}/redoc)",
            f"  AWS         {self.aws_url}",
            f"              (aws --endpoint-url {self.aws_url} dynamodb list-tables)",
            *self._admin_line(),
            "  Functions",
        ]
        for lid, host in self.functions.hosts.items():
            fn = host.function
            triggers = [f"{m} {p}" for m, p in fn.http_routes]
            if fn.queue_logical_id:
                triggers.append(f"SQS {fn.queue_logical_id} (batch {fn.batch_size})")
            for rule in getattr(self.scheduler, "rules", []):
                if rule.function == lid and rule.enabled:
                    triggers.append(f"schedule {rule.expression}")
            limit = f", reserved {fn.reserved_concurrency}" if fn.reserved_concurrency else ""
            lines.append(f"    {lid:<18} {', '.join(triggers) or '-'}  ({fn.timeout}s{limit})")
        lines.append("  Ctrl+C stops everything.")
        return "\n".join(lines)


@dataclass
class LocalAdmin:
    """The first admin: ``ORDO_ADMIN_USERNAME``/``ORDO_ADMIN_PASSWORD``, or a generated password
    shown in the banner. Never a default password."""

    username: str
    email: str
    password: str
    generated: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalAdmin:
        username = environ.get("ORDO_ADMIN_USERNAME", "admin")
        password = environ.get("ORDO_ADMIN_PASSWORD", "")
        return cls(
            username=username,
            email=environ.get("ORDO_ADMIN_EMAIL", f"{username}@example.com"),
            password=password or f"{secrets.token_urlsafe(12)}-Aa1",
            generated=not password,
        )

    @property
    def shown_password(self) -> str:
        return self.password if self.generated else "(password from ORDO_ADMIN_PASSWORD)"

    def ensure(self, dynamodb: Any, table_name: str) -> None:
        """Raises ``ValueError`` naming the problem if the account details break the rules."""
        from pydantic import ValidationError

        from ordo.accounts import RegisterRequest, ensure_admin
        from ordo.clock import utcnow
        from ordo.http import describe_validation_errors
        from ordo.storage.accounts import DynamoUserTable

        try:
            request = RegisterRequest(
                email=self.email, username=self.username, password=self.password
            )
        except ValidationError as exc:
            problems = describe_validation_errors(exc.errors())
            raise ValueError(f"ORDO_ADMIN_* is not a valid account: {problems}") from exc
        ensure_admin(DynamoUserTable(dynamodb, table_name), request, utcnow())
