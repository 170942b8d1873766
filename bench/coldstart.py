"""Cold start of every function with an HTTP route, by phase, against one bare boto3 call.

Each sample is a fresh python3.12 process, timed from spawn to exit, set up as Lambda runs the
``sam build`` artifact: only boto3 installed (the runtime's), the function folder then the
host-architecture copy of the CoreLayer on ``PYTHONPATH`` (``/var/task`` then ``/opt/python``),
read-only code (no ``.pyc`` written), the template's environment. It imports ``app`` and handles
one real API Gateway v2 event against a moto server provisioned from template.yaml. The floor is
the same interpreter importing boto3 and making one DynamoDB call: what any Python function pays.
Every function of the template with an HTTP route is measured.

The process's main is a small bootstrap that takes timestamps and wraps botocore's
``Session.create_client`` (hooking each client's per-operation events), so every cold start is
cut into measured phases that add up to its wall time:

    start      spawn to the bootstrap's first line (the interpreter, site)
    import     ``import app`` (``import boto3`` for the floor), less any client or call in it
    clients    botocore client creation, every service
    SSM        SSM calls (GetParameter of the token public keys)
    GetItem    the first DynamoDB GetItem: the signed-in user (the floor's one item)
    other AWS  every other AWS call
    handler    the rest of the invocation: the handler's own work
    exit       the handler's return to the process's exit (a Lambda container never pays it)

Every authenticated route needs a bearer access token, so each event carries one, signed with
an Ed25519 key whose public half sits in moto's SSM as the String the template names
(``JwtPublicKeysParameterName``), for a user seeded in the table (an admin for the admin
function). A function's cold start therefore includes what it pays deployed: one SSM
GetParameter for the public keys, verifying the token and one GetItem of the user, on top of
its own work.

Then, the import cost of token verification alone (``--crypto-only`` runs just this): a fresh
process imports pydantic, then one of: ordo's verifier path (``ordo.tokens`` and cryptography's
ed25519), the old HS256 path (``import jwt`` without cryptography), or ``import jwt`` with
cryptography installed (pyjwt then imports every algorithm cryptography has).

    python -m bench.coldstart [--rounds N] [--json] [--crypto-only]
    python -m bench.coldstart --importtime StatusFunction
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from bench import figures, tables
from bench.common import free_port

if TYPE_CHECKING:
    from infra.local.stack import Function

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
# The layer as `make build` also builds it for this machine's architecture (the deployed one is
# arm64, which cannot run here); the same requirements and sources.
LAYER = ROOT / ".aws-sam" / "host" / "CoreLayer" / "python"
STATE = ROOT / ".ordo"
BENCH_VENV = STATE / "bench-venv"
MOTO_LOG = STATE / "bench-moto.log"
RUNTIME_REQUIREMENT = "boto3==1.44.5"
FLOOR = "floor"
TARGET_RATIO = 2.0
STRETCH_RATIO = 1.5
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
MARKER = "ORDO_BENCH "
# The seeded user's access token outlives any run (the deployed lifetime is 15 minutes).
TOKEN_LIFETIME = timedelta(days=1)
# SubmitFunction leaves a pending job per run and no worker takes them: never hit the quota.
MAX_PENDING = 1_000_000

# argv: "api", event JSON, expected status, function name, memory MB, timeout s; or
# "floor", table name, key JSON. Timestamps are time.perf_counter() (CLOCK_MONOTONIC, which the
# parent shares), so the parent can place them against its spawn and exit times.
BOOTSTRAP = """\
import time
import importlib.util, json, sys
spans = []  # (kind, what, began, ended): "client" per create_client, "call" per operation


def watch(session_class):
    create = session_class.create_client

    def create_client(self, service_name, *args, **kwargs):
        began = time.perf_counter()
        client = create(self, service_name, *args, **kwargs)
        spans.append(("client", service_name, began, time.perf_counter()))
        calls = {}

        def before(event_name, **_):
            calls[event_name.split(".", 1)[1]] = time.perf_counter()

        def after(event_name, **_):
            operation = event_name.split(".", 1)[1]
            spans.append(("call", operation, calls.pop(operation), time.perf_counter()))

        # The whole call: from the first event (before serialising and resolving the endpoint)
        # to the last (the response parsed, or the error after the SDK's retries).
        client.meta.events.register("provide-client-params", before)
        client.meta.events.register("after-call", after)
        client.meta.events.register("after-call-error", after)
        return client

    session_class.create_client = create_client


class WatchBotocore:
    \"\"\"Wraps botocore's Session.create_client as botocore is imported (by app or boto3), so
    that importing it stays in the import phase.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name != "botocore.session":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            watch(module.Session)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, WatchBotocore())
mode, *args = sys.argv[1:]
if mode == "floor":
    table, key = args
    imports_began = time.perf_counter()
    import boto3
    imported = time.perf_counter()
    response = boto3.client("dynamodb").get_item(TableName=table, Key=json.loads(key))
    handled = time.perf_counter()
    if "Item" not in response:
        sys.exit("floor: the job item is missing")
else:
    event_json, expected, name, memory, timeout = args

    class Context:
        function_name = name
        function_version = "$LATEST"
        memory_limit_in_mb = int(memory)
        invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        aws_request_id = "0b7e6d1c-3f1a-4c55-9a0e-5d2b8f6a7c11"
        log_group_name = f"/aws/lambda/{name}"
        log_stream_name = "2026/01/01/[$LATEST]bench"
        deadline = time.monotonic() + float(timeout)

        def get_remaining_time_in_millis(self):
            return max(0, int((self.deadline - time.monotonic()) * 1000))

    imports_began = time.perf_counter()
    import app
    imported = time.perf_counter()
    response = app.handler(json.loads(event_json), Context())
    handled = time.perf_counter()
    if response["statusCode"] != int(expected):
        got = f"{response['statusCode']}: {response.get('body')}"
        sys.exit(f"{name}: expected HTTP {expected}, got {got}")
marks = {"imports_began": imports_began, "imported": imported, "handled": handled}
marks |= {"spans": spans}
sys.stderr.write("ORDO_BENCH " + json.dumps(marks) + "\\n")
"""


class BenchError(Exception):
    """The benchmark cannot run; the message says why."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the runtime's interpreter ------------------------------------------------------------


def _version_key(python: Path) -> tuple[int, ...]:
    version = python.parents[1].name
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def find_python312() -> Path:
    """python3.12 as the Makefile finds it: newest ``$(pyenv root)/versions/3.12.*``, then PATH."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, check=False
        ).stdout.strip()
        found = sorted(Path(root).glob("versions/3.12.*/bin/python3.12"), key=_version_key)
        if root and found:
            return found[-1]
    on_path = shutil.which("python3.12")
    if on_path:
        return Path(on_path)
    raise BenchError(
        "python3.12 not found (looked in $(pyenv root)/versions/3.12.*/bin and PATH); "
        "install it, e.g. 'pyenv install 3.12'"
    )


def ensure_bench_venv() -> Path:
    """The venv of the Lambda runtime's situation (python3.12, boto3 only), made once."""
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == RUNTIME_REQUIREMENT:
        return python
    base = find_python312()
    log(f"creating {BENCH_VENV.relative_to(ROOT)} ({base}, {RUNTIME_REQUIREMENT})")
    shutil.rmtree(BENCH_VENV, ignore_errors=True)
    try:
        subprocess.run([str(base), "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-input", RUNTIME_REQUIREMENT],
            check=True,
        )
    except subprocess.CalledProcessError as error:
        raise BenchError(f"could not create {BENCH_VENV}: {error}") from error
    stamp.write_text(RUNTIME_REQUIREMENT + "\n")
    return python


def runtime_versions(python: Path) -> tuple[str, str]:
    """The bench venv's Python and boto3 versions."""
    code = "import platform, boto3; print(platform.python_version(), boto3.__version__)"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"{python} cannot import boto3; delete {BENCH_VENV}:\n{out.stderr}")
    version, boto3_version = out.stdout.split()
    return version, boto3_version


def api_functions(functions: Mapping[str, Function]) -> list[str]:
    """Every function of the template with an HTTP route, in the template's order."""
    return [lid for lid, function in functions.items() if function.http_routes]


def check_build(names: Sequence[str]) -> None:
    needed = [BUILD / lid / "app.py" for lid in names] + [LAYER / "ordo" / "__init__.py"]
    missing = [path for path in needed if not path.exists()]
    if missing:
        raise BenchError(f"{missing[0].relative_to(ROOT)} is missing: run 'make build' first")


def warn_if_stale(functions: Mapping[str, Function]) -> None:
    """Warn when a source differs from its copy in ``.aws-sam/build``."""
    core = ROOT / "layers" / "core"
    pairs = [(source, LAYER / source.relative_to(core)) for source in (core / "ordo").rglob("*.py")]
    pairs += [
        (functions[lid].code_uri / "app.py", BUILD / lid / "app.py")
        for lid in api_functions(functions)
    ]
    stale = [
        str(source.relative_to(ROOT))
        for source, built in pairs
        if not built.exists() or source.read_bytes() != built.read_bytes()
    ]
    if stale:
        log(f"warning: .aws-sam/build is older than {', '.join(stale)}; run 'make build'")


# --- moto ---------------------------------------------------------------------------------


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/moto-api/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


@contextlib.contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """A moto server on a free loopback port, stopped on exit whatever happens; yields its URL."""
    port = free_port()
    STATE.mkdir(exist_ok=True)
    with MOTO_LOG.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while not _answers(port):
                if process.poll() is not None:
                    raise BenchError(f"moto server exited ({process.returncode}); see {MOTO_LOG}")
                if time.monotonic() > deadline:
                    raise BenchError(f"moto server did not answer in {timeout:.0f} s")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- what runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One kind of measured process: its runner, arguments, environment and folder."""

    name: str
    code: str
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Request:
    """The one request a function's cold start handles: a route of its own, as whom."""

    method: str
    route: str
    status: int
    who: str | None = "user"  # "user", "admin", or None for a public route
    parameters: Mapping[str, str] = field(default_factory=dict)  # name: seeded id
    body: str | None = None


# One request per function with HTTP routes (``prepare`` refuses a function missing here). An
# authenticated route where the function has one: the token is verified and the user read.
REQUESTS: dict[str, Request] = {
    "SubmitFunction": Request("POST", "/tasks", 202, body='{"type": "reverse", "data": "abc"}'),
    "StatusFunction": Request("GET", "/tasks/{task_id}", 200, parameters={"task_id": "pending"}),
    "ResultFunction": Request(
        "GET", "/tasks/{task_id}/result", 200, parameters={"task_id": "completed"}
    ),
    "AdminFunction": Request("GET", "/admin/lane", 200, who="admin"),
    "AuthFunction": Request("GET", "/auth/me", 200),
    "UsersFunction": Request("GET", "/users/{user_id}", 200, parameters={"user_id": "user"}),
    "CasesFunction": Request("GET", "/cases", 200),
    "DocumentsFunction": Request("GET", "/status/{job_id}", 200, parameters={"job_id": "pending"}),
    "HealthFunction": Request("GET", "/health", 200, who=None),
    # A reverse job is not a fetch job: a 404, after the token, the user and the job are read.
    "FetchFunction": Request(
        "GET", "/fetch/status/{job_id}", 404, parameters={"job_id": "completed"}
    ),
    "ProductsFunction": Request("GET", "/products", 200, who=None),
}


def _parent_imports() -> None:
    """Make ``infra`` and ``ordo`` importable when run from elsewhere than the repo root."""
    for path in (ROOT, ROOT / "layers" / "core"):
        if str(path) not in sys.path:
            sys.path.append(str(path))


def _runtime_variables(name: str, memory: int) -> dict[str, str]:
    """What the Lambda runtime itself sets in every function's environment (some of it)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "LAMBDA_TASK_ROOT": str(BUILD / name),
    }


def _child_env(
    environment: Mapping[str, str], endpoint: str, pythonpath: Sequence[Path]
) -> dict[str, str]:
    env = dict(environment) | FAKE_CREDENTIALS
    env |= {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if pythonpath:
        env["PYTHONPATH"] = ":".join(str(path) for path in pythonpath)
    return env


def _api_event(
    function: Function,
    method: str,
    route: str,
    path_parameters: dict[str, str],
    body: str | None,
    token: str | None,
) -> dict[str, Any]:
    from infra.local.events import http_event

    if (method, route) not in function.http_routes:
        raise BenchError(f"{function.logical_id} has no route {method} {route}")
    headers = {"host": "api.local", "user-agent": "ordo-bench"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if body is not None:
        headers["content-type"] = "application/json"
    return http_event(
        method,
        route.format(**path_parameters),
        route=route,
        path_parameters=path_parameters or None,
        headers=headers,
        body=body,
    )


def prepare(endpoint: str) -> dict[str, Case]:
    """Provision the template into moto, store the JWT secret in its SSM, seed a user with one
    pending and one completed job, build cases."""
    _parent_imports()
    import boto3

    from infra.local.ordo_app import store_stack_signing_key
    from infra.local.stack import Stack
    from ordo.accounts import RegisterRequest, User, UserView, ensure_admin, register
    from ordo.jobs import Job, JobStatus, new_job_id
    from ordo.queue import SqsJobQueue
    from ordo.storage.accounts import DynamoLoginGuard, DynamoUserTable
    from ordo.storage.jobs import DynamoJobTable, job_key
    from ordo.tasks import ReversePayload, TaskRequest, TaskType, submit_task
    from ordo.tokens import SigningKey, TokenType, issue_token

    session = boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    stack = Stack.load(overrides={"TimeScale": "0", "MaxPendingPerUser": str(MAX_PENDING)})
    stack.provision(dynamodb, sqs)
    functions = stack.functions()
    warn_if_stale(functions)

    key = SigningKey.generate()
    store_stack_signing_key(session.client("ssm", endpoint_url=endpoint), stack, key)
    issuer = functions["StatusFunction"].environment["ORDO_JWT_ISSUER"]
    audience = functions["StatusFunction"].environment["ORDO_JWT_AUDIENCE"]

    submit_env = functions["SubmitFunction"].environment
    table_name = submit_env["ORDO_TABLE_NAME"]
    max_pending = int(submit_env["ORDO_MAX_PENDING_PER_USER"])
    table = DynamoJobTable(dynamodb, table_name)
    users = DynamoUserTable(dynamodb, table_name)
    now = datetime.now(UTC)
    user = register(
        users,
        DynamoLoginGuard(dynamodb, table_name),
        RegisterRequest(email="bench@example.com", username="bench", password="Bench-passw0rd"),
        now=now,
        client="127.0.0.1",
    )
    admin, _ = ensure_admin(
        users,
        RegisterRequest(email="root@example.com", username="root", password="Bench-passw0rd"),
        now,
    )

    def token_of(who: UserView | User, generation: int) -> str:
        token, _ = issue_token(
            key,
            who.id,
            who.role,
            TokenType.ACCESS,
            now=now,
            lifetime=TOKEN_LIFETIME,
            generation=generation,
            family="bench",
            issuer=issuer,
            audience=audience,
        )
        return token

    # A new user's tokens are of generation 0; ensure_admin may have bumped the admin's.
    tokens = {"user": token_of(user, 0), "admin": token_of(admin, admin.token_generation)}
    pending = submit_task(
        table,
        SqsJobQueue(sqs, submit_env["ORDO_QUEUE_URL"]),
        TaskRequest(type=TaskType.REVERSE, data="abc"),
        owner=user.id,
        now=now,
        retention_days=1,
        max_pending=max_pending,
    )
    completed = Job(
        job_id=new_job_id(),
        owner=user.id,
        kind="reverse",
        data=ReversePayload(text="abc").model_dump_json(),
        status=JobStatus.COMPLETED,
        created_at=now - timedelta(seconds=3),
        started_at=now - timedelta(seconds=2),
        finished_at=now,
        result="cba",
        attempt=1,
    )
    table.create(completed, max_pending)

    ids = {"pending": pending.task_id, "completed": completed.job_id, "user": user.id}
    names = api_functions(functions)
    unknown = [lid for lid in names if lid not in REQUESTS]
    if unknown:
        raise BenchError(f"no request for {', '.join(unknown)}: add one to REQUESTS")
    # As deployed: the functions read the public keys from the String the template names.
    parameter = stack.parameters["JwtPublicKeysParameterName"]
    cases: dict[str, Case] = {}
    for lid in names:
        request = REQUESTS[lid]
        function = functions[lid]
        named = function.environment.get("ORDO_JWT_PUBLIC_KEYS_PARAMETER")
        if request.who is not None and named != parameter:
            raise BenchError(f"{lid} reads the JWT public keys from {named!r}, not {parameter!r}")
        parameters = {name: ids[seeded] for name, seeded in request.parameters.items()}
        token = tokens[request.who] if request.who else None
        event = _api_event(function, request.method, request.route, parameters, request.body, token)
        cases[lid] = Case(
            name=lid,
            code=BOOTSTRAP,
            args=(
                "api",
                json.dumps(event),
                str(request.status),
                lid,
                str(function.memory),
                str(function.timeout),
            ),
            env=_child_env(
                function.environment | _runtime_variables(lid, function.memory),
                endpoint,
                [BUILD / lid, LAYER],
            ),
            cwd=BUILD / lid,
        )
    cases[FLOOR] = Case(
        name=FLOOR,
        code=BOOTSTRAP,
        args=("floor", table_name, json.dumps(job_key(pending.task_id))),
        env=_child_env(functions["StatusFunction"].environment, endpoint, []),
        cwd=BUILD / "StatusFunction",
    )
    return cases


# --- measuring ----------------------------------------------------------------------------


# The phases of a cold start, in order, with their table headings; they add up to the wall time.
PHASES = {
    "start": "start",
    "imports": "import",
    "clients": "clients",
    "ssm": "SSM",
    "get_item": "GetItem",
    "other_aws": "other AWS",
    "handler": "handler",
    "exit": "exit",
}
IN_PROCESS = ("imports", "clients", "ssm", "get_item", "other_aws", "handler")


@dataclass(frozen=True)
class Sample:
    """One cold start: whole-process wall time, and its phases (seconds, adding up to it)."""

    wall_s: float
    phases: dict[str, float]

    @property
    def in_process_s(self) -> float:
        """Without interpreter start-up and exit: what the process measured of itself."""
        return sum(self.phases[phase] for phase in IN_PROCESS)


def phases_of(marks: Mapping[str, Any], spawned: float, exited: float) -> dict[str, float]:
    """Cut one process's timestamps (``perf_counter``, shared with the parent) into phases."""
    spans = [
        (kind, what, float(began), float(ended)) for kind, what, began, ended in marks["spans"]
    ]

    def inside(low: float, high: float) -> float:
        return sum(ended - began for _, _, began, ended in spans if low <= began and ended <= high)

    phases = dict.fromkeys(PHASES, 0.0)
    phases["start"] = marks["imports_began"] - spawned
    phases["imports"] = marks["imported"] - marks["imports_began"]
    phases["imports"] -= inside(marks["imports_began"], marks["imported"])
    phases["handler"] = marks["handled"] - marks["imported"]
    phases["handler"] -= inside(marks["imported"], marks["handled"])
    phases["exit"] = exited - marks["handled"]
    user_read = False
    for kind, what, began, ended in spans:
        if kind == "client":
            phase = "clients"
        elif what.startswith("ssm."):
            phase = "ssm"
        elif what == "dynamodb.GetItem" and not user_read:
            phase, user_read = "get_item", True
        else:
            phase = "other_aws"
        phases[phase] += ended - began
    return phases


def run_case(python: Path, case: Case, flags: Sequence[str] = ()) -> tuple[Sample, str]:
    """Run one fresh process of ``case``; returns its sample and its stderr."""
    command = [str(python), *flags, "-c", case.code, *case.args]
    spawned = time.perf_counter()
    try:
        completed = subprocess.run(
            command,
            env=case.env,
            cwd=case.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    except OSError as error:
        raise BenchError(
            f"{case.name} could not start ({error}); is 'make build' running?"
        ) from error
    exited = time.perf_counter()
    lines = completed.stderr.splitlines()
    if completed.returncode != 0:
        tail = "\n".join(lines[-20:])
        raise BenchError(f"{case.name} exited with {completed.returncode}:\n{tail}")
    marked = [line for line in lines if line.startswith(MARKER)]
    if not marked:
        raise BenchError(f"{case.name} reported no timings")
    marks = json.loads(marked[-1].removeprefix(MARKER))
    return Sample(exited - spawned, phases_of(marks, spawned, exited)), completed.stderr


def measure(
    python: Path, cases: Mapping[str, Case], rounds: int, warmup: int, seed: int
) -> dict[str, list[Sample]]:
    """``warmup`` unrecorded rounds, then ``rounds`` rounds, each case once a round, shuffled."""
    rng = random.Random(seed)
    order = list(cases)
    samples: dict[str, list[Sample]] = {name: [] for name in cases}
    for number in range(-warmup, rounds):
        rng.shuffle(order)
        for name in order:
            sample, _ = run_case(python, cases[name])
            if number >= 0:
                samples[name].append(sample)
        label = "warm-up" if number < 0 else f"round {number + 1}/{rounds}"
        log(f"{label}: " + ", ".join(order))
    return samples


# --- reporting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """The samples of one case, summarised: medians of the wall time and of each phase."""

    name: str
    samples: list[Sample]

    @property
    def median_s(self) -> float:
        return statistics.median(sample.wall_s for sample in self.samples)

    @property
    def min_s(self) -> float:
        return min(sample.wall_s for sample in self.samples)

    @property
    def max_s(self) -> float:
        return max(sample.wall_s for sample in self.samples)

    def phase_s(self, phase: str) -> float:
        return statistics.median(sample.phases[phase] for sample in self.samples)

    @property
    def in_process_s(self) -> float:
        return statistics.median(sample.in_process_s for sample in self.samples)

    def as_json(self) -> dict[str, Any]:
        return {
            "median_s": round(self.median_s, 4),
            "min_s": round(self.min_s, 4),
            "max_s": round(self.max_s, 4),
            "phases_median_s": {phase: round(self.phase_s(phase), 4) for phase in PHASES},
            "in_process_median_s": round(self.in_process_s, 4),
            "samples_s": [round(sample.wall_s, 4) for sample in self.samples],
        }


@dataclass(frozen=True)
class Report:
    """Every function against the floor, with the settings that produced it."""

    floor: Stats
    functions: list[Stats]
    rounds: int
    warmup: int
    target: float
    python: str
    boto3: str

    def ratio(self, stats: Stats) -> float:
        return stats.median_s / self.floor.median_s

    def in_process_ratio(self, stats: Stats) -> float:
        return stats.in_process_s / self.floor.in_process_s

    def passed(self, stats: Stats) -> bool:
        return self.ratio(stats) <= self.target

    def summary(self) -> str:
        within = [stats for stats in self.functions if self.passed(stats)]
        worst = max(self.functions, key=self.ratio)
        verdict = "PASS" if len(within) == len(self.functions) else "FAIL"
        return (
            f"SUMMARY {verdict}: {len(within)}/{len(self.functions)} API functions within "
            f"{self.target:g}x of the boto3 floor ({self.floor.median_s:.3f} s); worst "
            f"{worst.name} at {self.ratio(worst):.2f}x ({worst.median_s:.3f} s)"
        )

    def verdict(self, stats: Stats) -> str:
        if not self.passed(stats):
            return "FAIL"
        return "PASS*" if self.ratio(stats) <= STRETCH_RATIO else "PASS"

    def table(self) -> str:
        header = ("function", *PHASES.values(), "total", "x floor", "in-proc x", "target")
        rows = [header]
        for stats in [self.floor, *self.functions]:
            is_floor = stats is self.floor
            rows.append(
                (
                    "floor (boto3 get_item)" if is_floor else stats.name,
                    *(f"{stats.phase_s(phase) * 1000:.0f}" for phase in PHASES),
                    f"{stats.median_s * 1000:.0f}",
                    f"{self.ratio(stats):.2f}x",
                    f"{self.in_process_ratio(stats):.2f}x",
                    "-" if is_floor else self.verdict(stats),
                )
            )
        intro = (
            f"Cold start by phase (ms, medians): Python {self.python}, boto3 {self.boto3} only, "
            f"sam build artifact, moto on 127.0.0.1\n{self.rounds} rounds (+{self.warmup} "
            "warm-up), interleaved; total = whole-process wall time, spawn to exit; target "
            f"<= {self.target:g}x floor median (PASS* within the stretch, {STRETCH_RATIO:g}x)\n"
            "start = interpreter start-up; import = 'import app' (or boto3); clients = botocore "
            "client creation; SSM = GetParameter of the token keys; GetItem = the user's (the "
            "floor's item);\nother AWS = every other call; handler = the rest of the "
            "invocation; exit = the process's exit (a Lambda container never pays it); each "
            "column is its own median\nin-proc x = median(import .. handler) over the floor's: "
            "the ratio without interpreter start-up and exit\n"
        )
        return intro + tables.aligned(rows) + "\n\n" + self.summary()

    def as_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "boto3": self.boto3,
            "rounds": self.rounds,
            "warmup": self.warmup,
            "target_ratio": self.target,
            "stretch_ratio": STRETCH_RATIO,
            "floor": self.floor.as_json(),
            "functions": {
                stats.name: stats.as_json()
                | {
                    "ratio": round(self.ratio(stats), 3),
                    "in_process_ratio": round(self.in_process_ratio(stats), 3),
                    "pass": self.passed(stats),
                }
                for stats in self.functions
            },
            "pass": all(self.passed(stats) for stats in self.functions),
            "summary": self.summary(),
        }


# --- -X importtime ------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One line of ``-X importtime``."""

    module: str
    self_us: int
    cumulative_us: int


def parse_importtime(stderr: str) -> list[Import]:
    imports = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        imports.append(Import(fields[2].strip(), int(fields[0]), int(fields[1])))
    return imports


def importtime_report(imports: list[Import], sample: Sample, name: str, top: int = 25) -> str:
    total = sum(item.self_us for item in imports)
    by_package: dict[str, int] = {}
    for item in imports:
        package = item.module.split(".")[0]
        by_package[package] = by_package.get(package, 0) + item.self_us

    def block(title: str, rows: list[tuple[str, int]]) -> list[str]:
        lines = [title, f"{'ms':>8}  {'share':>6}  module"]
        for module, micros in rows[:top]:
            lines.append(f"{micros / 1000:8.1f}  {micros / total:6.1%}  {module}")
        return [*lines, ""]

    by_cumulative = sorted(imports, key=lambda item: item.cumulative_us, reverse=True)
    by_self = sorted(imports, key=lambda item: item.self_us, reverse=True)
    lines = [
        f"{name}: -X importtime over one cold process, its imports and its one invocation "
        f"({sample.wall_s:.3f} s wall with importtime's overhead, after one unmeasured run)",
        f"{len(imports)} modules, {total / 1000:.1f} ms importing",
        "",
        *block(
            f"Top {top} by cumulative time",
            [(item.module, item.cumulative_us) for item in by_cumulative],
        ),
        *block(f"Top {top} by self time", [(item.module, item.self_us) for item in by_self]),
        *block(
            "Self time by top-level package",
            sorted(by_package.items(), key=lambda pair: pair[1], reverse=True),
        ),
    ]
    return "\n".join(lines).rstrip()


# --- the import cost of token verification ------------------------------------------------

# argv: mode, JWKS, token. Times one import (and, for "verify", one verification) after what
# every API function has imported before it sees a token: FastAPI, pydantic's BaseModel, and
# ordo.errors. (``import pydantic`` alone is lazy: BaseModel would be billed to the verifier.)
CRYPTO_RUNNER = """\
import json, sys, time
mode, jwks, token = sys.argv[1:]
if mode == "jwt-hs256":
    class NoCryptography:  # the layer before: pyjwt without its crypto extra
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "cryptography":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, NoCryptography())
import fastapi
from pydantic import BaseModel
import ordo.errors
imports_began = time.perf_counter()
if mode == "tokens-module":
    import ordo.tokens
elif mode.startswith("verifier"):
    from datetime import datetime, UTC
    from ordo.tokens import PublicKeys, TokenType, TokenVerifier
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    if mode == "verifier+verify":
        verifier = TokenVerifier.of(PublicKeys.from_jwks(jwks))
        verifier.verify(token, TokenType.ACCESS, datetime.now(UTC))
else:
    import jwt
    if jwt.algorithms.has_crypto != (mode == "jwt-crypto"):
        sys.exit(f"{mode}: pyjwt has_crypto is {jwt.algorithms.has_crypto}")
imported = time.perf_counter()
if mode == "tokens-module" and "cryptography" in sys.modules:
    sys.exit("importing ordo.tokens imported cryptography")
if "jwt" in sys.modules and not mode.startswith("jwt"):
    sys.exit("the verifier imported jwt")
marks = {"imports_began": imports_began, "imported": imported, "handled": imported, "spans": []}
sys.stderr.write("ORDO_BENCH " + json.dumps(marks) + "\\n")
"""
CRYPTO_CASES = {
    "tokens-module": "ordo.tokens alone (its Claims model; no crypto yet)",
    "verifier": "ordo verifier: ordo.tokens + cryptography ed25519",
    "verifier+verify": "  the same, and one token verified",
    "jwt-hs256": "before: import jwt, no cryptography (HS256)",
    "jwt-crypto": "import jwt with cryptography (pyjwt[crypto])",
}


def crypto_cases() -> dict[str, Case]:
    """The three import paths, in the layer as ``sam build`` made it."""
    _parent_imports()
    from ordo.tokens import SigningKey, TokenType, issue_token

    if not (LAYER / "cryptography").is_dir() or not (LAYER / "jwt").is_dir():
        raise BenchError(f"{LAYER.relative_to(ROOT)} lacks cryptography or jwt: run 'make build'")
    key = SigningKey.generate()
    token, _ = issue_token(
        key,
        "bench",
        "user",
        TokenType.ACCESS,
        now=datetime.now(UTC),
        lifetime=TOKEN_LIFETIME,
        generation=0,
        family="bench",
    )
    env = _child_env({}, "http://127.0.0.1:9", [LAYER])
    jwks = key.public_keys().to_jwks()
    return {
        mode: Case(mode, CRYPTO_RUNNER, (mode, jwks, token), env, LAYER) for mode in CRYPTO_CASES
    }


@dataclass(frozen=True)
class CryptoReport:
    """Median in-process import time of each token path, fresh processes."""

    samples: dict[str, list[Sample]]
    rounds: int
    python: str

    def median_ms(self, mode: str) -> float:
        return statistics.median(sample.phases["imports"] for sample in self.samples[mode]) * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            mode: {
                "median_ms": round(self.median_ms(mode), 2),
                "samples_ms": [round(s.phases["imports"] * 1000, 2) for s in self.samples[mode]],
            }
            for mode in CRYPTO_CASES
        }

    def table(self) -> str:
        width = max(len(label) for label in CRYPTO_CASES.values())
        lines = [
            f"Token verification import cost: Python {self.python}, the sam build layer, "
            f"{self.rounds} fresh processes each, interleaved; in-process time after "
            "fastapi, pydantic.BaseModel and ordo.errors are imported",
            f"{'path'.ljust(width)}  {'median':>9}  {'min':>9}  {'max':>9}",
            f"{'-' * width}  {'-' * 9}  {'-' * 9}  {'-' * 9}",
        ]
        for mode, label in CRYPTO_CASES.items():
            values = [sample.phases["imports"] * 1000 for sample in self.samples[mode]]
            lines.append(
                f"{label.ljust(width)}  {self.median_ms(mode):>6.1f} ms  "
                f"{min(values):>6.1f} ms  {max(values):>6.1f} ms"
            )
        verifier = self.median_ms("verifier+verify")
        ed25519 = self.median_ms("verifier") - self.median_ms("tokens-module")
        lines.append(
            f"CRYPTO: cryptography's ed25519 adds {ed25519:+.1f} ms to ordo.tokens; the whole "
            f"verifier path (import, one verification) is {verifier:.1f} ms against "
            f"{self.median_ms('jwt-hs256'):.1f} ms for the old 'import jwt'; pyjwt with "
            f"cryptography would cost {self.median_ms('jwt-crypto'):.1f} ms in every API "
            "function (issue 15's budget: at most 30 ms more)"
        )
        return "\n".join(lines)


def measure_crypto(python: Path, rounds: int, warmup: int, seed: int, version: str) -> CryptoReport:
    samples = measure(python, crypto_cases(), rounds, warmup, seed)
    return CryptoReport(samples, rounds, version)


# --- entry point --------------------------------------------------------------------------


def _stop(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.coldstart",
        description="Cold start of every API function, by phase, against a bare boto3 floor.",
    )
    parser.add_argument("--rounds", type=int, default=11, help="measured rounds (default 11)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round order")
    parser.add_argument(
        "--target", type=float, default=TARGET_RATIO, help="ratio to the floor that passes"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--crypto-only",
        action="store_true",
        help="measure only the import cost of token verification (no moto, no functions)",
    )
    parser.add_argument(
        "--importtime",
        metavar="FUNCTION",
        choices=(*REQUESTS, FLOOR),
        help=f"one run under -X importtime instead: {', '.join(REQUESTS)} or {FLOOR}",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        check_build(list(REQUESTS))
        python = ensure_bench_venv()
        version, boto3_version = runtime_versions(python)
        if args.crypto_only:
            crypto = measure_crypto(python, args.rounds, args.warmup, args.seed, version)
            print(json.dumps(crypto.as_json(), indent=2) if args.json else crypto.table())
            return 0
        with moto_server() as endpoint:
            cases = prepare(endpoint)
            if args.importtime:
                case = cases[args.importtime]
                run_case(python, case)
                sample, stderr = run_case(python, case, ["-X", "importtime"])
                print(importtime_report(parse_importtime(stderr), sample, case.name))
                return 0
            samples = measure(python, cases, args.rounds, args.warmup, args.seed)
        crypto = measure_crypto(python, args.rounds, args.warmup, args.seed, version)
    except BenchError as error:
        log(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    report = Report(
        floor=Stats(FLOOR, samples[FLOOR]),
        functions=[Stats(name, samples[name]) for name in samples if name != FLOOR],
        rounds=args.rounds,
        warmup=args.warmup,
        target=args.target,
        python=version,
        boto3=boto3_version,
    )
    worst = max(report.functions, key=report.ratio)
    figures.record(
        "cold_start",
        figures.Figure(
            "cold start, worst API function / boto3 floor",
            report.ratio(worst),
            "x",
            report.target,
            1.5,
            f"{worst.name}, {worst.median_s * 1000:.0f} ms",
        ),
    )
    if args.json:
        print(json.dumps(report.as_json() | {"token_imports": crypto.as_json()}, indent=2))
    else:
        print(report.table())
        print()
        print(crypto.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
