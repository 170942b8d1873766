"""The local cloud: template.yaml on one machine, without Docker.

moto's server stands in for the AWS APIs. Around it run an API Gateway, warm function
processes, an SQS event source mapping per queue trigger, the template's schedules, a TTL
sweeper and a code watcher, all built from the transformed template.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from infra.local import moto_fidelity
from infra.local.clock import LocalClock
from infra.local.functions import CodeWatcher, FunctionHost, Functions, Launcher, spawn_process
from infra.local.gateway import Answer, Gateway
from infra.local.moto_imports import import_ssm_without_ec2
from infra.local.routing import Route
from infra.local.stack import TEMPLATE, Function, Stack
from infra.local.startup import Bootstrap, GatedInvoker, Phases, Step, Warming
from infra.local.static import StaticFiles
from infra.local.zygote import ForkServers

log = logging.getLogger("ordo.local")

REGION = "us-east-1"
TIMEOUTS_VARIABLE = "ORDO_LOCAL_TIMEOUTS"
FORK_SERVER_VARIABLE = "ORDO_LOCAL_FORK_SERVER"
JSON = {"content-type": "application/json"}
# Passed to every function, as Lambda's own environment would be.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")


class StackSetup(Protocol):
    """The one hook through which an application adds what its own template needs to the
    generic local cloud (ordo's: ``infra.local.ordo_app.OrdoSetup``, which ``python -m
    infra.local`` passes). Without one, the cloud runs any template as it is."""

    def prepare_environment(
        self, function: Function, environment: dict[str, str]
    ) -> dict[str, str]:
        """``function``'s process environment as the cloud made it (Lambda's variables, the
        template's, then the overrides); returns what the function gets."""

    def waits_for_setup(self, function: Function) -> bool:
        """Whether every invocation of ``function`` through the gateway waits for the steps of
        :meth:`after_resources` (a request carrying credentials always does)."""

    def after_resources(
        self, stack: Stack, client: Callable[[str], Any], *, serving: bool
    ) -> list[Step]:
        """Steps to run once moto holds the template's tables and queues; ``client(service)``
        makes a client of moto. ``serving``: the gateway will serve, and the steps run in the
        background (``LocalCloud.start``); otherwise they run at once, before any function is
        invoked directly (``LocalCloud.start_resources``). May raise ``ValueError`` to stop
        the start."""

    def banner_lines(self, stack: Stack) -> list[str]:
        """Lines the banner adds after the AWS endpoint."""


def _inherited() -> dict[str, str]:
    return {k: os.environ[k] for k in _INHERITED if k in os.environ}


_SESSION_LOCK = threading.Lock()


@functools.cache
def _botocore_session() -> Any:
    from botocore.session import get_session

    return get_session()


def _create_client(service: str, **arguments: Any) -> Any:
    """A client from the one session of this process's clients of moto: botocore's endpoint
    data (7 MB once parsed) and each service's model are parsed once, not once per client."""
    with _SESSION_LOCK:  # a botocore session creates one client at a time
        return _botocore_session().create_client(service, **arguments)


def fork_server_environment() -> dict[str, str]:
    """A fork server's environment: only what every function's environment holds alike."""
    return _inherited() | {"PYTHONUNBUFFERED": "1"}


def lambda_environment(
    function: Function,
    stack: Stack,
    aws_url: str,
    overrides: Mapping[str, str],
    setup: StackSetup | None = None,
) -> dict[str, str]:
    """A function's process environment, as Lambda sets it, against ``aws_url``: the
    template's variables, then ``overrides`` (the starting shell's), then ``setup``'s changes."""
    lambda_env = {
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": stack.physical[function.logical_id]["Ref"],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "PYTHONUNBUFFERED": "1",
    }
    environment = _inherited() | lambda_env | function.environment | dict(overrides)
    return setup.prepare_environment(function, environment) if setup else environment


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
    # Fork warm function processes from a fork server (infra.local.zygote), not spawn them;
    # ORDO_LOCAL_FORK_SERVER=0 spawns each one plainly.
    fork_server: bool = field(
        default_factory=lambda: os.environ.get(FORK_SERVER_VARIABLE, "1") != "0"
    )
    # What the application adds for its own template (StackSetup); None runs it as it is.
    setup: StackSetup | None = None

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
    _fork_servers: ForkServers | None = field(default=None, init=False)
    phases: Phases = field(default_factory=Phases, init=False)
    bootstrap: Bootstrap | None = field(default=None, init=False)
    warming: Warming | None = field(default=None, init=False)
    event_sources: list[Any] = field(default_factory=list, init=False)
    scheduler: Any = field(default=None, init=False)
    ttl: Any = field(default=None, init=False)

    # --- start and stop ----------------------------------------------------------------

    def start(self) -> None:
        """Serve as soon as moto, the tables and the queues are up; the setup's steps (ordo's:
        the token keys and the admin) follow in the background, then the warming of the
        functions in a thread of its own (infra.local.startup)."""
        self._load_stack()
        definitions = self._with_timeouts(self.stack.functions())
        if self.watch:
            self._watcher = CodeWatcher([self.stack.base / "functions", self.stack.base / "layers"])
            self._spawn("code-watcher", self._watcher.run)
        launcher = self._start_fork_servers(definitions.values())
        self.phases.mark("functions and fork server")
        dynamodb, sqs = self.start_resources(serving=True)
        steps = (
            self.setup.after_resources(self.stack, self._client, serving=True) if self.setup else []
        )
        self.bootstrap = Bootstrap(steps, self.phases)
        self.functions = Functions(
            {
                lid: FunctionHost(
                    fn, self._environment(fn), generation=self._generation(fn), launcher=launcher
                )
                for lid, fn in definitions.items()
            }
        )
        routes = [
            Route(method, path, lid)
            for lid, fn in definitions.items()
            for method, path in fn.http_routes
        ]
        static = StaticFiles()
        setup = self.setup
        waiting = {lid for lid, fn in definitions.items() if setup and setup.waits_for_setup(fn)}
        self.gateway = Gateway(
            (self.host, self.port),
            routes,
            GatedInvoker(self.functions, self.bootstrap, waiting),
            self._local,
            static.answer,
            throttling=self.stack.throttling(),
        )
        self.port = int(self.gateway.server_address[1])
        self._threads.append(self.gateway.serve_in_thread())
        self.phases.mark("gateway")
        self._start_event_sources(definitions, sqs, dynamodb)
        self.phases.mark("event sources")
        log.info("serving: %s", self.phases)
        self._spawn("start-up", self.bootstrap.run)
        if self.warm:
            # One warming at a time per spare core: the first requests keep a core of their own.
            workers = max(1, (os.cpu_count() or 2) - 1)
            self.warming = Warming(self.functions.hosts, self.bootstrap.done, self.phases, workers)
            self._spawn("warm-up", self.warming.run)

    def _load_stack(self) -> None:
        if not hasattr(self, "stack"):
            self.stack = Stack.load(region=REGION, overrides=self.parameters, path=self.template)
            self.phases.mark("template")

    def _generation(self, function: Function) -> Callable[[], Hashable] | None:
        """A function's code generation: its own folder's and the layers'."""
        watcher, layers = self._watcher, self.stack.base / "layers"
        if watcher is None:
            return None
        code = function.code_uri
        return lambda: (watcher.generation_under(code), watcher.generation_under(layers))

    def _start_fork_servers(self, functions: Iterable[Function]) -> Launcher:
        """One fork server per layer set, importing while the rest starts; replaced when the
        layers change. Its environment is what every function inherits alike."""
        if not self.fork_server:
            return spawn_process
        watcher, layers = self._watcher, self.stack.base / "layers"
        self._fork_servers = ForkServers(
            fork_server_environment(),
            layer_generation=(lambda: watcher.generation_under(layers)) if watcher else None,
        )
        self._fork_servers.prestart(functions)
        return self._fork_servers

    def start_resources(self, *, serving: bool = False) -> tuple[Any, Any]:
        """moto with the template's tables and queues, then (unless ``serving``: ``start`` runs
        them in the background) the setup's steps: no gateway, no functions (all ``ordo local
        invoke`` needs). Returns DynamoDB and SQS clients."""
        self._load_stack()
        self._start_moto()
        self.phases.mark("moto")
        dynamodb, sqs = self._client("dynamodb"), self._client("sqs")
        self.stack.provision(dynamodb, sqs)
        self.phases.mark("tables and queues")
        if not serving and self.setup is not None:
            for _, step in self.setup.after_resources(self.stack, self._client, serving=False):
                step()
        return dynamodb, sqs

    def _start_moto(self) -> None:
        from infra.local.motoserver import MotoServer

        moto_fidelity.apply()
        import_ssm_without_ec2()  # ~110 MB less in this process (infra/local/moto_imports.py)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = MotoServer(ip_address="127.0.0.1", port=self.aws_port)
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

    def _client(self, service: str) -> Any:
        """A client of moto for this process's own calls (the event source mappings', the
        schedules', the sweeper's): served in process, off the socket (``motoserver.InProcess``)."""
        client = _create_client(
            service,
            region_name=REGION,
            endpoint_url=self.aws_url,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any key
        )
        return self._moto.attach(client) if self._moto is not None else client

    def _environment(self, function: Function) -> dict[str, str]:
        return lambda_environment(
            function, self.stack, self.aws_url, self.env_overrides, self.setup
        )

    def _start_event_sources(
        self, definitions: dict[str, Function], sqs: Any, dynamodb: Any
    ) -> None:
        from infra.local.esm import SqsEventSource
        from infra.local.motoserver import InProcessReceive
        from infra.local.scheduler import Scheduler
        from infra.local.ttl import TtlSweeper

        for function in definitions.values():
            if function.queue_logical_id:
                source = SqsEventSource.from_stack(
                    self.stack,
                    function,
                    sqs,
                    self.functions,
                    self.clock,
                    # moto runs in this process
                    signals=moto_fidelity.message_signals,
                    receive=InProcessReceive(self.stack.physical[function.queue_logical_id]["Arn"]),
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
        if self._fork_servers is not None:
            self._fork_servers.close()
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
            return self._json(
                {"status": "ok", "aws_endpoint": self.aws_url} | self._bootstrap_state()
            )
        if path == "/_local/startup" and method == "GET":
            warming = self.warming
            warmed = warming is not None and warming.done.is_set()
            ended = self.bootstrap is not None and self.bootstrap.done.is_set()
            return self._json(
                self.phases.as_json()
                | self._bootstrap_state()
                | {
                    "warmed": warmed,
                    "not_warmed": dict(warming.failed) if warming else {},
                    "ready": ended and (warmed or warming is None),  # nothing left to start
                }
            )
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
            if parse_qs(query).get("detail") == ["true"]:
                return self._json(self._functions_detail())
            return self._json({lid: host.pids() for lid, host in self.functions.hosts.items()})
        return 404, JSON, b'{"message":"Not Found"}'

    def _bootstrap_state(self) -> dict[str, Any]:
        """``bootstrapped``: signed-in requests and direct SSM readers can go ahead (the token
        keys and the admin are in place); ``startup_error``: why they never will."""
        bootstrap = self.bootstrap
        return {
            "bootstrapped": bootstrap is not None and bootstrap.succeeded,
            "startup_error": bootstrap.failed if bootstrap else None,
        }

    def _functions_detail(self) -> dict[str, Any]:
        """``GET /_local/functions?detail=true``: each function's processes, the time its
        latest one took from start (fork, or exec) to ready, and its fork server's pid."""
        servers = self._fork_servers
        return {
            lid: {
                "pids": host.pids(),
                "ready_ms": None if host.ready_ms is None else round(host.ready_ms, 2),
                "fork_server": servers.pid_of(host.function) if servers else None,
            }
            for lid, host in self.functions.hosts.items()
        }

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
            *(self.setup.banner_lines(self.stack) if self.setup else []),
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
