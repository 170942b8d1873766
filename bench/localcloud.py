"""What the local cloud costs: gateway, pipeline, pickup and memory, each against its target.

One run starts the local cloud (``python -m infra.local --no-watch``, ``ORDO_TIME_SCALE=0.01``)
and measures, side by side:

* gateway overhead: ``GET /tasks/{id}`` through the local cloud against the same FastAPI app
  (``functions/status/app.py``) served straight by uvicorn, both on the local cloud's moto;
  sequential requests, alternating targets, one keep-alive client each; ratio of the medians;
* pipeline overhead: tasks of every type submitted as fast as possible, then awaited; wall time
  from the first submit to the last ``finished_at``, minus the simulated delays, per job;
* pickup latency: ``started_at - created_at`` of a task submitted to an idle queue (after the
  memory sampling has stopped);
* memory: peak sum of the proportional set size (PSS, from ``/proc/PID/smaps_rollup``: a page
  shared by N processes counts 1/N in each) of the local cloud and every process it started,
  sampled every 100 ms during the pipeline load; the RSS sum beside it counts shared pages once
  per process;
* warm function start: from a function process's start (fork from the fork server, or exec of
  a plain ``python -m infra.local.runtime``) to its ready frame;
* mapping pickup: once the local cloud has stopped, the event source mapping alone
  (``infra.local.esm``) on moto in this process, feeding a function that only notes the time:
  from a send to an idle queue to the invocation, as the local cloud runs it (told of sends,
  receiving in process) and long-polling through its SQS client.

Every ``/tasks`` route needs a bearer access token: the bench registers a user of its own with
``POST /auth/register``, signs in with ``POST /auth/login/json`` and sends the token with every
request, to both gateway targets (uvicorn reads the local cloud's public keys from the same SSM).
Each status request thus verifies a token and gets the user (one more GetItem) in both targets.

    python -m bench.localcloud [--requests N] [--warmup N] [--tasks N] [--concurrency N]
                               [--pickups N] [--seed N] [--json]

The local cloud's own log (function output included) is kept in .ordo/bench-localcloud.log.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import httpx

from bench import figures, tables
from bench.common import free_port
from infra.local.stack import ACCOUNT_LIMIT_OVERRIDES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".ordo"
CLOUD_LOG = STATE / "bench-localcloud.log"
UVICORN_LOG = STATE / "bench-uvicorn.log"
TIME_SCALE = 0.01
# then --port P --no-watch. The bench calls one route far past the template's throttle (50 a
# second): API Gateway's account limits instead.
CLOUD_COMMAND = [
    sys.executable,
    "-m",
    "infra.local",
    "--parameter-overrides",
    *ACCOUNT_LIMIT_OVERRIDES,
]
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
FINAL = ("completed", "failed")
TASK_TYPES = ("reverse", "swap_pairs", "repeat_by_position")
SAMPLE_INTERVAL = 0.1  # seconds between memory samples
PIDS_INTERVAL = 1.0  # seconds between reads of /_local/functions while sampling
# Status polls load the local cloud they measure (a pending task's GET costs moto a GetItem and
# a Query), so they are sparse: results come from the tasks' own server-side timestamps.
POLL_INTERVAL = 0.02  # seconds between polls of one task, by default
PIPELINE_POLL_INTERVAL = 0.25
PICKUP_FIRST_POLL = 0.15  # seconds after a pickup submit before its first poll
FLOOR_JOBS = 30  # jobs whose worker-side DynamoDB calls are timed straight against moto

NAGLE_SIGNATURE_MS = 35.0  # a local round trip this slow is a delayed ACK, not work

TARGET_GATEWAY_RATIO = 1.5
TARGET_PIPELINE_MS = 25.0
TARGET_PICKUP_MS = 10.0
TARGET_MEMORY_MB = 400.0
TARGET_MAPPING_PICKUP_MS = 50.0  # p50, each way of receiving
MAPPING_IDLE_S = 0.03  # the mapping's idle wait before each send of the mapping pickup

PASSWORD = "Bench-passw0rd"  # of the user the bench registers
# ORDO_* settings of the local cloud, and so of its functions (and of the uvicorn target):
CLOUD_SETTINGS = {
    "ORDO_TIME_SCALE": str(TIME_SCALE),
    # One user submits every pipeline task at once: the pending quota must never answer 429.
    "ORDO_MAX_PENDING_PER_USER": "1000000",
    # The token the bench signs in for outlives any run (the template's default is 15 min).
    "ORDO_ACCESS_TOKEN_MINUTES": str(24 * 60),
}


class BenchError(Exception):
    """The benchmark cannot run; the message says why."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parent_imports() -> None:
    """Make ``infra`` and ``ordo`` importable when run from elsewhere than the repo root."""
    for path in (ROOT, ROOT / "layers" / "core"):
        if str(path) not in sys.path:
            sys.path.append(str(path))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with ``fraction`` of the samples at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def parse_time(value: Any) -> float:
    """A task timestamp (ISO 8601, as the API returns it) as epoch seconds."""
    if not isinstance(value, str):
        raise BenchError(f"expected a timestamp, got {value!r}")
    return datetime.fromisoformat(value).timestamp()


# --- processes ----------------------------------------------------------------------------


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Let a second ctrl+c not cut a clean-up short (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_process(process: subprocess.Popen[bytes], signum: int, timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class CloudProcess:
    """The local cloud as ``make dev`` runs it, in a session of its own."""

    process: subprocess.Popen[bytes]
    url: str
    aws_url: str = ""
    seen_pids: set[int] = field(default_factory=set)

    def function_pids(self, client: httpx.Client) -> dict[str, list[int]]:
        answer: dict[str, list[int]] = client.get(f"{self.url}/_local/functions").json()
        for pids in answer.values():
            self.seen_pids.update(pids)
        return answer


@contextlib.contextmanager
def local_cloud(
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    command: Sequence[str] = CLOUD_COMMAND,
) -> Iterator[CloudProcess]:
    """``python -m infra.local`` (or ``command``, which takes its arguments) on a free port;
    stopped with SIGINT (as ctrl+c) on exit."""
    port = free_port()
    STATE.mkdir(exist_ok=True)
    full_env = os.environ | CLOUD_SETTINGS | {"PYTHONPATH": str(ROOT)} | (env or {})
    with CLOUD_LOG.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--no-watch", *args],
            cwd=ROOT,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # ctrl+c reaches us; we stop it as ctrl+c would
        )
    cloud = CloudProcess(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise BenchError(f"local cloud exited ({process.returncode}); see {CLOUD_LOG}")
            if time.monotonic() > deadline:
                raise BenchError(f"local cloud did not answer in {timeout:.0f} s; see {CLOUD_LOG}")
            try:
                health = httpx.get(f"{cloud.url}/_local/health", timeout=1)
                # Served, and bootstrapped: the token keys and the admin are in place.
                if health.status_code == 200 and health.json().get("bootstrapped", True):
                    cloud.aws_url = str(health.json()["aws_endpoint"])
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield cloud
    finally:
        with _sigint_ignored():
            if process.poll() is None:
                cloud.seen_pids |= descendants(process.pid)
            stop_process(process, signal.SIGINT, timeout=15)
            # A local cloud that had to be killed leaves its function processes behind.
            for pid in sorted(cloud.seen_pids):
                if any(m in _cmdline(pid) for m in ("infra.local.runtime", "infra.local.zygote")):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Account:
    """The user the bench acts as, signed in."""

    user_id: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"}


def sign_up(url: str) -> Account:
    """Register a new user through the local cloud and sign it in."""
    username = f"bench-{secrets.token_hex(4)}"
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {"email": f"{username}@example.com", "username": username, "password": PASSWORD}
        registered = client.post("/auth/register", json=body)
        if registered.status_code != 201:
            raise BenchError(f"POST /auth/register -> {registered.status_code} {registered.text}")
        signed_in = client.post(
            "/auth/login/json", json={"username": username, "password": PASSWORD}
        )
        if signed_in.status_code != 200:
            raise BenchError(f"POST /auth/login/json -> {signed_in.status_code} {signed_in.text}")
    return Account(str(registered.json()["id"]), str(signed_in.json()["access_token"]))


def _status_environment(aws_url: str) -> dict[str, str]:
    """StatusFunction's environment as the local cloud gives it, pointed at its moto.

    The template's environment, then the same ``ORDO_*`` overrides the local cloud applies
    (``ORDO_JWT_PUBLIC_KEYS``, if set, replaces the SSM public keys in both targets alike).
    """
    _parent_imports()
    from infra.local.ordo_app import shell_overrides
    from infra.local.stack import Stack

    stack = Stack.load()
    table = stack.physical["JobsTable"]["Ref"]
    template_env = stack.functions()["StatusFunction"].environment
    if template_env.get("ORDO_TABLE_NAME") != table:
        raise BenchError(f"StatusFunction's table is not {table}: {template_env}")
    inherited = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    layer, code = ROOT / "layers" / "core", ROOT / "functions" / "status"
    return (
        inherited
        | template_env
        | shell_overrides(os.environ | CLOUD_SETTINGS)
        | FAKE_CREDENTIALS
        | {
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "ORDO_TABLE_NAME": table,
            "PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT, layer, code)),
            "PYTHONUNBUFFERED": "1",
        }
    )


@contextlib.contextmanager
def uvicorn_server(
    aws_url: str, probe_path: str, headers: dict[str, str], timeout: float = 30.0
) -> Iterator[str]:
    """functions/status/app.py's ``app`` under uvicorn; yields its URL once it answers
    ``probe_path`` (with ``headers``) with a 200."""
    port = free_port()
    env = _status_environment(aws_url)
    with UVICORN_LOG.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT / "functions" / "status",
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise BenchError(f"uvicorn exited ({process.returncode}); see {UVICORN_LOG}")
            if time.monotonic() > deadline:
                raise BenchError(f"uvicorn did not answer in {timeout:.0f} s; see {UVICORN_LOG}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + probe_path, headers=headers, timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        with _sigint_ignored():
            stop_process(process, signal.SIGTERM, timeout=10)


# --- memory -------------------------------------------------------------------------------


def memory_kib(pid: int) -> tuple[int, int] | None:
    """RSS and PSS of ``pid`` in KiB, from ``/proc/PID/smaps_rollup``; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    if len(values) < 2:
        return None  # a zombie maps nothing
    return values["Rss"], values["Pss"]


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, from each process's parent in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass(frozen=True)
class MemorySample:
    at: float  # time.monotonic()
    total_kib: int  # PSS sum: what the processes cost together
    by_pid: dict[int, int]  # PSS
    rss_kib: int = 0  # RSS sum: shared pages counted once per process


class MemorySampler:
    """Sums the PSS (and RSS) of the local cloud and every process below it, every 100 ms, in
    a thread.

    Function processes are found both in /proc and through ``/_local/functions?detail=true``,
    which also names the fork server and each function's latest start-to-ready time.
    """

    def __init__(self, cloud: CloudProcess, interval: float = SAMPLE_INTERVAL) -> None:
        self.cloud = cloud
        self.interval = interval
        self.samples: list[MemorySample] = []
        self.functions: dict[int, str] = {}  # pid -> logical id
        self.fork_servers: set[int] = set()
        self.ready_ms: dict[str, float] = {}  # logical id -> its latest process's start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _refresh_functions(self, client: httpx.Client) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
            answer = client.get(f"{self.cloud.url}/_local/functions?detail=true").json()
            for lid, detail in answer.items():
                self.cloud.seen_pids.update(detail["pids"])
                for pid in detail["pids"]:
                    self.functions[pid] = lid
                if detail.get("fork_server"):
                    self.fork_servers.add(detail["fork_server"])
                if detail.get("ready_ms") is not None:
                    self.ready_ms[lid] = detail["ready_ms"]

    def _run(self) -> None:
        root = self.cloud.process.pid
        next_refresh = 0.0
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_refresh:
                    self._refresh_functions(client)
                    next_refresh = now + PIDS_INTERVAL
                pids = {root} | descendants(root) | set(self.functions)
                measured = {pid: kib for pid in pids if (kib := memory_kib(pid)) is not None}
                self.samples.append(
                    MemorySample(
                        now,
                        sum(pss for _, pss in measured.values()),
                        {pid: pss for pid, (_, pss) in measured.items()},
                        sum(rss for rss, _ in measured.values()),
                    )
                )
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - now)))

    def peak(self, start: float = 0.0, end: float = math.inf) -> MemorySample | None:
        window = [s for s in self.samples if start <= s.at <= end]
        return max(window, key=lambda s: s.total_kib) if window else None


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of ``pid`` in clock ticks, 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def wait_settled(cloud: CloudProcess, timeout: float = 30.0, window: float = 0.5) -> None:
    """Wait until every function has a process and the local cloud's tree sits idle.

    The local cloud answers before its warm-up threads have imported each function's code; a
    request that arrives meanwhile starts a second process of that function.
    """
    root = cloud.process.pid
    deadline = time.monotonic() + timeout
    previous: int | None = None
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            functions = cloud.function_pids(client)
            ticks = sum(cpu_ticks(pid) for pid in {root} | descendants(root))
            busy = previous is None or ticks - previous > 0.1 * window * os.sysconf("SC_CLK_TCK")
            if functions and all(functions.values()) and not busy:
                return
            previous = ticks
            time.sleep(window)
    log(f"warning: the local cloud was still busy {timeout:.0f} s after it answered")


def mb(kib: int) -> float:
    """KiB (as /proc reports) to MB (10^6 bytes), the unit of the target."""
    return kib * 1024 / 1e6


# --- access logs --------------------------------------------------------------------------


def app_durations_ms(path: Path, request_path: str, count: int) -> list[float]:
    """The ``duration_ms`` of the last ``count`` access-log lines of ``request_path`` in ``path``.

    ordo's access-log middleware times the request inside the FastAPI app, in both targets.
    """
    durations = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "request" and record.get("path") == request_path:
            durations.append(float(record["duration_ms"]))
    return durations[-count:]


# --- 1. gateway overhead ------------------------------------------------------------------


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path)
    return time.perf_counter() - started, response


@dataclass(frozen=True)
class Gateway:
    cloud_s: list[float]
    direct_s: list[float]
    health_s: list[float]  # GET /_local/health: the gateway's HTTP handling, no function
    moto_s: list[float]  # DynamoDB GetItem straight to moto from this process
    cloud_app_ms: list[float]  # inside the FastAPI app, from the access log
    direct_app_ms: list[float]
    target: float

    @property
    def cloud_ms(self) -> float:
        return statistics.median(self.cloud_s) * 1000

    @property
    def direct_ms(self) -> float:
        return statistics.median(self.direct_s) * 1000

    @property
    def ratio(self) -> float:
        return self.cloud_ms / self.direct_ms

    @property
    def p99_ratio(self) -> float:
        return percentile(self.cloud_s, 0.99) / percentile(self.direct_s, 0.99)

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target

    def as_json(self) -> dict[str, Any]:
        def summary(seconds: list[float]) -> dict[str, float]:
            return {
                "median_ms": round(statistics.median(seconds) * 1000, 3),
                "p99_ms": round(percentile(seconds, 0.99) * 1000, 3),
                "min_ms": round(min(seconds) * 1000, 3),
                "max_ms": round(max(seconds) * 1000, 3),
            }

        def app(ms: list[float]) -> float | None:
            return round(statistics.median(ms), 3) if ms else None

        return {
            "requests": len(self.cloud_s),
            "local_cloud": summary(self.cloud_s),
            "uvicorn": summary(self.direct_s),
            "ratio": round(self.ratio, 3),
            "p99_ratio": round(self.p99_ratio, 3),
            "target_ratio": self.target,
            "pass": self.passed,
            "breakdown": {
                "gateway_health_median_ms": round(statistics.median(self.health_s) * 1000, 3),
                "moto_get_item_median_ms": round(statistics.median(self.moto_s) * 1000, 3),
                "local_cloud_in_app_median_ms": app(self.cloud_app_ms),
                "uvicorn_in_app_median_ms": app(self.direct_app_ms),
            },
        }


def _dynamodb(aws_url: str) -> DynamoDBClient:
    """A botocore DynamoDB client on the local cloud's moto, as ``ordo.aws`` makes them."""
    from botocore.session import get_session

    return cast(
        "DynamoDBClient",
        get_session().create_client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=aws_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ),
    )


def _table_name() -> str:
    from infra.local.stack import Stack

    return Stack.load().physical["JobsTable"]["Ref"]


def _moto_get_item(aws_url: str, task_id: str, count: int) -> list[float]:
    """GetItem of the task's record straight to moto: one of a status request's two GetItems
    (the other gets the user behind the token)."""
    from ordo.storage.jobs import job_key

    table, key = _table_name(), job_key(task_id)
    client = _dynamodb(aws_url)
    samples = []
    for _ in range(count + 20):
        started = time.perf_counter()
        client.get_item(TableName=table, Key=key, ConsistentRead=True)
        samples.append(time.perf_counter() - started)
    client.close()
    return samples[20:]


def moto_lane_floor(aws_url: str, owner: str, jobs: int = FLOOR_JOBS) -> list[float]:
    """Per job, the worker's own DynamoDB calls (GetItem, claim, finish) straight to moto.

    What no local cloud can go below while moto serves the table. The jobs are written to the
    table directly (as ``owner``'s, within a quota they never reach) and never queued, so the
    worker never sees them. The claim is a transaction: the job and its owner's pending count.
    """
    from ordo.jobs import Job, JobStatus, new_job_id
    from ordo.storage.jobs import DynamoJobTable
    from ordo.tasks import ReversePayload

    client = _dynamodb(aws_url)
    table = DynamoJobTable(client, _table_name())
    samples = []
    for _ in range(jobs + 3):
        job = Job(
            job_id=new_job_id(),
            owner=owner,
            kind="reverse",
            data=ReversePayload(text="abc").model_dump_json(),
            created_at=utcnow(),
        )
        table.create(job, max_pending=1_000_000)
        started = time.perf_counter()
        found = table.get(job.job_id)
        if found is None:
            raise BenchError(f"job {job.job_id} vanished from moto")
        claimed = table.claim(found, utcnow())
        table.finish(claimed, JobStatus.COMPLETED, utcnow(), result="cba")
        samples.append(time.perf_counter() - started)
    client.close()
    return samples[3:]


def utcnow() -> datetime:
    return datetime.now(UTC)


def measure_gateway(
    cloud: CloudProcess,
    direct_url: str,
    account: Account,
    task_id: str,
    requests: int,
    warmup: int,
    target: float,
) -> Gateway:
    path = f"/tasks/{task_id}"
    cloud_s: list[float] = []
    direct_s: list[float] = []
    with (
        httpx.Client(base_url=cloud.url, timeout=30, headers=account.headers) as via_cloud,
        httpx.Client(base_url=direct_url, timeout=30, headers=account.headers) as direct,
    ):
        first = {name: c.get(path) for name, c in (("local cloud", via_cloud), ("uvicorn", direct))}
        for name, response in first.items():
            if response.status_code != 200:
                raise BenchError(f"{name}: GET {path} -> {response.status_code} {response.text}")
        if first["local cloud"].json() != first["uvicorn"].json():
            raise BenchError(f"the two targets disagree: {[r.json() for r in first.values()]}")
        targets = ((via_cloud, cloud_s), (direct, direct_s))
        for number in range(-warmup, requests):
            # Alternate which target goes first, so neither always follows the other.
            for client, samples in targets if number % 2 == 0 else targets[::-1]:
                elapsed, response = timed_get(client, path)
                if response.status_code != 200:
                    raise BenchError(f"GET {path} -> {response.status_code} {response.text}")
                if number >= 0:
                    samples.append(elapsed)
        health_s = [timed_get(via_cloud, "/_local/health")[0] for _ in range(warmup + requests)]
    return Gateway(
        cloud_s=cloud_s,
        direct_s=direct_s,
        health_s=health_s[warmup:],
        moto_s=_moto_get_item(cloud.aws_url, task_id, requests),
        cloud_app_ms=app_durations_ms(CLOUD_LOG, path, requests),
        direct_app_ms=app_durations_ms(UVICORN_LOG, path, requests),
        target=target,
    )


# --- tasks --------------------------------------------------------------------------------


def delay_s(task_type: str) -> float:
    """The simulated duration of one task of ``task_type`` at the bench's time scale."""
    _parent_imports()
    from ordo.tasks import PAYLOADS, TaskType

    return PAYLOADS[TaskType(task_type)].DELAY_SECONDS * TIME_SCALE


def submit(client: httpx.Client, task_type: str, data: str) -> str:
    response = client.post("/tasks", json={"type": task_type, "data": data})
    if response.status_code != 202:
        raise BenchError(f"POST /tasks -> {response.status_code} {response.text}")
    task_id: str = response.json()["task_id"]
    return task_id


def await_task(
    client: httpx.Client,
    task_id: str,
    timeout: float = 60.0,
    interval: float = POLL_INTERVAL,
    first_poll: float = 0.0,
) -> dict[str, Any]:
    """Poll ``GET /tasks/{id}`` until the task completed; its view."""
    deadline = time.monotonic() + timeout
    time.sleep(first_poll)
    while True:
        response = client.get(f"/tasks/{task_id}")
        if response.status_code != 200:
            raise BenchError(f"GET /tasks/{task_id} -> {response.status_code} {response.text}")
        view: dict[str, Any] = response.json()
        if view["status"] in FINAL:
            if view["status"] != "completed":
                raise BenchError(f"task {task_id} failed: {view.get('error')}")
            return view
        if time.monotonic() > deadline:
            raise BenchError(f"task {task_id} is still {view['status']} after {timeout:.0f} s")
        time.sleep(interval)


# --- 2. pipeline overhead -----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    task_type: str
    created: float
    started: float
    finished: float

    @property
    def delay(self) -> float:
        return delay_s(self.task_type)


@dataclass(frozen=True)
class Pipeline:
    jobs: list[Job]
    first_submit: float  # epoch seconds, just before the first POST
    submits_done: float  # epoch seconds, after the last POST answered
    target_ms: float
    moto_floor_s: list[float] = field(default_factory=list)  # see moto_lane_floor

    @property
    def delays_s(self) -> float:
        return sum(job.delay for job in self.jobs)

    @property
    def wall_s(self) -> float:
        return max(job.finished for job in self.jobs) - self.first_submit

    @property
    def lane_s(self) -> float:
        return max(job.finished for job in self.jobs) - min(job.started for job in self.jobs)

    @property
    def per_job_ms(self) -> float:
        return (self.wall_s - self.delays_s) / len(self.jobs) * 1000

    @property
    def lane_per_job_ms(self) -> float:
        return (self.lane_s - self.delays_s) / len(self.jobs) * 1000

    @property
    def in_worker_ms(self) -> list[float]:
        """started_at to finished_at beyond the simulated delay: claim, sleep, finish."""
        return [(job.finished - job.started - job.delay) * 1000 for job in self.jobs]

    @property
    def gaps_ms(self) -> list[float]:
        """From one job's finished_at to the next one's started_at, in lane order."""
        ordered = sorted(self.jobs, key=lambda job: job.started)
        return [(b.started - a.finished) * 1000 for a, b in itertools.pairwise(ordered)]

    @property
    def passed(self) -> bool:
        return self.per_job_ms <= self.target_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "tasks": len(self.jobs),
            "submit_phase_s": round(self.submits_done - self.first_submit, 4),
            "wall_s": round(self.wall_s, 4),
            "lane_s": round(self.lane_s, 4),
            "simulated_delays_s": round(self.delays_s, 4),
            "per_job_overhead_ms": round(self.per_job_ms, 3),
            "lane_per_job_overhead_ms": round(self.lane_per_job_ms, 3),
            "target_ms": self.target_ms,
            "pass": self.passed,
            "breakdown": {
                "in_worker_median_ms": round(statistics.median(self.in_worker_ms), 3),
                "between_jobs_median_ms": round(statistics.median(self.gaps_ms), 3),
                "between_jobs_p90_ms": round(percentile(self.gaps_ms, 0.9), 3),
                "first_start_after_first_submit_ms": round(
                    (min(job.started for job in self.jobs) - self.first_submit) * 1000, 3
                ),
                "moto_floor_per_job_median_ms": (
                    round(statistics.median(self.moto_floor_s) * 1000, 3)
                    if self.moto_floor_s
                    else None
                ),
            },
        }


def _record(view: dict[str, Any]) -> Job:
    return Job(
        task_type=str(view["type"]),
        created=parse_time(view["created_at"]),
        started=parse_time(view["started_at"]),
        finished=parse_time(view["finished_at"]),
    )


def measure_pipeline(
    url: str, account: Account, tasks: int, concurrency: int, target_ms: float
) -> tuple[Pipeline, float, float]:
    """Submit ``tasks`` tasks, await them; returns the result and the monotonic window."""
    kinds = [TASK_TYPES[n % len(TASK_TYPES)] for n in range(tasks)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=url, timeout=30, limits=limits, headers=account.headers) as client:
        client.get("/_local/health")  # open one connection before the clock starts
        window_start = time.monotonic()
        first_submit = time.time()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            ids = list(pool.map(lambda n: submit(client, kinds[n], f"job{n}"), range(tasks)))
        submits_done = time.time()
        log(f"pipeline: {tasks} submitted in {submits_done - first_submit:.2f} s; awaiting")
        # One task polled at a time, in submission order: the lane finishes them about in
        # that order, so this stays a light load next to the work being measured.
        views = [
            await_task(client, task_id, timeout=120, interval=PIPELINE_POLL_INTERVAL)
            for task_id in ids
        ]
        window_end = time.monotonic()
    pipeline = Pipeline([_record(view) for view in views], first_submit, submits_done, target_ms)
    return pipeline, window_start, window_end


# --- 3. pickup latency --------------------------------------------------------------------


@dataclass(frozen=True)
class Pickup:
    pickup_ms: list[float]  # started_at - created_at
    submit_ms: list[float]  # POST /tasks round trip
    target_ms: float

    @property
    def median_ms(self) -> float:
        return statistics.median(self.pickup_ms)

    @property
    def passed(self) -> bool:
        return self.median_ms <= self.target_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "samples": len(self.pickup_ms),
            "median_ms": round(self.median_ms, 3),
            "p90_ms": round(percentile(self.pickup_ms, 0.9), 3),
            "min_ms": round(min(self.pickup_ms), 3),
            "max_ms": round(max(self.pickup_ms), 3),
            "submit_median_ms": round(statistics.median(self.submit_ms), 3),
            "target_ms": self.target_ms,
            "pass": self.passed,
            "samples_ms": [round(value, 3) for value in self.pickup_ms],
        }


def measure_pickup(url: str, account: Account, count: int, seed: int, target_ms: float) -> Pickup:
    """``count`` tasks, each submitted once the previous one finished and the lane sat idle.

    The idle pause is drawn from 50 ms to 1.05 s, so submits land anywhere in the event
    source mapping's 1 s wait for moto's announcement of a sent message (``infra.local.esm``).
    """
    rng = random.Random(seed)
    pickups: list[float] = []
    submits: list[float] = []
    with httpx.Client(base_url=url, timeout=30, headers=account.headers) as client:
        for _ in range(count):
            time.sleep(rng.uniform(0.05, 1.05))
            started = time.perf_counter()
            task_id = submit(client, "reverse", "abc")
            submits.append((time.perf_counter() - started) * 1000)
            job = _record(await_task(client, task_id, first_poll=PICKUP_FIRST_POLL))
            pickups.append((job.started - job.created) * 1000)
    return Pickup(pickups, submits, target_ms)


# --- 4. memory ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    peak: MemorySample
    overall: MemorySample
    main_pid: int
    functions: dict[int, str]
    samples: int
    target_mb: float
    fork_servers: frozenset[int] = frozenset()

    @property
    def peak_mb(self) -> float:
        """PSS sum at the peak: the figure the target applies to."""
        return mb(self.peak.total_kib)

    @property
    def peak_rss_mb(self) -> float:
        return mb(self.peak.rss_kib)

    @property
    def passed(self) -> bool:
        return self.peak_mb <= self.target_mb

    def parts(self, sample: MemorySample) -> dict[str, float]:
        """PSS MB by role: the main process, the fork server, each function (all its
        processes), anything else."""
        parts: dict[str, float] = {}
        for pid, kib in sorted(sample.by_pid.items()):
            if pid == self.main_pid:
                name = "local cloud (gateway, moto, ESM)"
            elif pid in self.fork_servers:
                name = "fork server"
            else:
                name = self.functions.get(pid, "other")
            parts[name] = parts.get(name, 0.0) + mb(kib)
        return parts

    def as_json(self) -> dict[str, Any]:
        return {
            "peak_pss_mb": round(self.peak_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_processes": len(self.peak.by_pid),
            "peak_by_role_pss_mb": {k: round(v, 1) for k, v in self.parts(self.peak).items()},
            "whole_run_peak_pss_mb": round(mb(self.overall.total_kib), 1),
            "samples": self.samples,
            "target_mb": self.target_mb,
            "pass": self.passed,
        }


# --- 5. warm function start -------------------------------------------------------------------

STARTS = 3  # process starts timed per launcher
START_FUNCTION = "StatusFunction"


@dataclass(frozen=True)
class Starts:
    """Start to ready of one function's process: forked from a ready fork server, and spawned
    plainly (``python -m infra.local.runtime``), in this process against the local cloud's moto;
    and each function's latest start inside the local cloud (while it warmed them all at once)."""

    function: str
    forked_ms: list[float]
    plain_ms: list[float]
    in_cloud_ms: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "forked_ms": [round(ms, 1) for ms in self.forked_ms],
            "plain_ms": [round(ms, 1) for ms in self.plain_ms],
            "forked_median_ms": round(statistics.median(self.forked_ms), 1),
            "plain_median_ms": round(statistics.median(self.plain_ms), 1),
            "in_cloud_ms": {k: round(v, 1) for k, v in sorted(self.in_cloud_ms.items())},
        }


def measure_starts(aws_url: str, in_cloud_ms: dict[str, float], count: int = STARTS) -> Starts:
    _parent_imports()
    from infra.local.cloud import fork_server_environment, lambda_environment
    from infra.local.functions import FunctionHost, Launcher, spawn_process
    from infra.local.stack import Stack
    from infra.local.zygote import ForkServers

    stack = Stack.load()
    function = stack.functions()[START_FUNCTION]
    environment = lambda_environment(function, stack, aws_url, CLOUD_SETTINGS)

    def start(launcher: Launcher) -> float:
        host = FunctionHost(function, environment, launcher=launcher)
        try:
            host.warm()
            if host.ready_ms is None or host.openapi() is None:  # its init failed
                raise BenchError(f"{START_FUNCTION} did not start; see the output above")
            return host.ready_ms
        finally:
            host.close()

    servers = ForkServers(fork_server_environment())
    try:
        servers.server(tuple(function.layers)).hello()  # imported before the clock starts
        forked = [start(servers) for _ in range(count)]
    finally:
        servers.close()
    plain = [start(spawn_process) for _ in range(count)]
    return Starts(START_FUNCTION, forked, plain, dict(in_cloud_ms))


# --- 6. pickup by the event source mapping alone ------------------------------------------


@dataclass(frozen=True)
class MappingPickup:
    announced_ms: list[float]  # as the local cloud runs it: told of sends, receiving in process
    long_poll_ms: list[float]  # through its SQS client, long-polling
    target_ms: float

    @property
    def median_ms(self) -> float:
        """The slower way's median."""
        return max(statistics.median(self.announced_ms), statistics.median(self.long_poll_ms))

    @property
    def passed(self) -> bool:
        return self.median_ms <= self.target_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "announced_median_ms": round(statistics.median(self.announced_ms), 3),
            "long_poll_median_ms": round(statistics.median(self.long_poll_ms), 3),
            "target_ms": self.target_ms,
            "pass": self.passed,
            "announced_ms": [round(value, 3) for value in self.announced_ms],
            "long_poll_ms": [round(value, 3) for value in self.long_poll_ms],
        }


def measure_mapping_pickup(count: int, target_ms: float) -> MappingPickup:
    """``count`` messages each way, each sent to the template's lane after the mapping has sat
    idle ``MAPPING_IDLE_S``: the time from the send to the invocation."""
    _parent_imports()
    import queue

    import boto3
    from moto import mock_aws

    from infra.local import moto_fidelity
    from infra.local.clock import LocalClock
    from infra.local.esm import SqsEventSource
    from infra.local.invoke import Invocation, Outcome
    from infra.local.motoserver import InProcessReceive
    from infra.local.stack import Stack

    class Arrivals:
        """An ``Invoker`` that only notes when it is invoked."""

        def __init__(self) -> None:
            self.times: queue.Queue[float] = queue.Queue()

        def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
            self.times.put(time.perf_counter())
            return Invocation(Outcome.OK)

    moto_fidelity.apply()
    stack = Stack.load(region=REGION)
    worker = stack.functions()["WorkerFunction"]
    lane = worker.queue_logical_id or "JobsQueue"

    def pickups(announced: bool) -> list[float]:
        with mock_aws():
            sqs = boto3.client("sqs", region_name=REGION)
            stack.provision(boto3.client("dynamodb", region_name=REGION), sqs)
            arrivals = Arrivals()
            source = SqsEventSource.from_stack(
                stack,
                worker,
                sqs,
                arrivals,
                LocalClock(),
                signals=moto_fidelity.message_signals if announced else None,
                receive=InProcessReceive(stack.physical[lane]["Arn"]) if announced else None,
            )
            stop = threading.Event()
            thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
            thread.start()
            latencies = []
            try:
                for n in range(count):
                    time.sleep(MAPPING_IDLE_S)
                    sent = time.perf_counter()
                    sqs.send_message(
                        QueueUrl=stack.queue_url(lane),
                        MessageBody=str(n),
                        MessageGroupId="bench",
                        MessageDeduplicationId=str(n),
                    )
                    try:
                        latencies.append((arrivals.times.get(timeout=5) - sent) * 1000)
                    except queue.Empty:
                        raise BenchError("the event source mapping delivered nothing") from None
            finally:
                stop.set()
                thread.join(timeout=5)  # a long poll may be under way
        return latencies

    return MappingPickup(pickups(announced=True), pickups(announced=False), target_ms)


# --- report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    gateway: Gateway
    pipeline: Pipeline
    pickup: Pickup
    memory: Memory
    concurrency: int
    starts: Starts | None = None
    mapping: MappingPickup | None = None

    @property
    def checks(self) -> list[tuple[str, bool]]:
        return [
            ("gateway", self.gateway.passed),
            ("pipeline", self.pipeline.passed),
            ("pickup", self.pickup.passed),
            ("memory", self.memory.passed),
        ]

    def summary(self) -> str:
        passed = sum(ok for _, ok in self.checks)
        verdict = "PASS" if passed == len(self.checks) else "FAIL"
        failed = [name for name, ok in self.checks if not ok]
        return (
            f"SUMMARY {verdict}: {passed}/{len(self.checks)} targets met"
            + (f" (failed: {', '.join(failed)})" if failed else "")
            + f"; gateway {self.gateway.ratio:.2f}x uvicorn, pipeline "
            f"{self.pipeline.per_job_ms:.1f} ms/job, pickup {self.pickup.median_ms:.1f} ms, "
            f"peak memory {self.memory.peak_mb:.0f} MB"
        )

    def table(self) -> str:
        g, p, k, m = self.gateway, self.pipeline, self.pickup, self.memory
        verdict = {True: "PASS", False: "FAIL"}
        rows = [
            ("check", "measured", "target", "result", "detail"),
            (
                "gateway GET /tasks/{id}",
                f"{g.ratio:.2f}x",
                f"<= {g.target:g}x",
                verdict[g.passed],
                f"median {g.cloud_ms:.2f} ms local cloud vs {g.direct_ms:.2f} ms uvicorn",
            ),
            (
                "  p99",
                f"{g.p99_ratio:.2f}x",
                "-",
                "info",
                f"p99 {percentile(g.cloud_s, 0.99) * 1000:.2f} ms vs "
                f"{percentile(g.direct_s, 0.99) * 1000:.2f} ms ({len(g.cloud_s)} requests each)",
            ),
            (
                "pipeline overhead per job",
                f"{p.per_job_ms:.1f} ms",
                f"<= {p.target_ms:g} ms",
                verdict[p.passed],
                f"{len(p.jobs)} jobs: {p.wall_s:.2f} s first submit -> last finish, "
                f"{p.delays_s:.2f} s simulated",
            ),
            (
                "  lane only",
                f"{p.lane_per_job_ms:.1f} ms",
                "-",
                "info",
                f"{p.lane_s:.2f} s first start -> last finish, minus the simulated delays",
            ),
            (
                "pickup on an idle queue",
                f"{k.median_ms:.1f} ms",
                f"<= {k.target_ms:g} ms",
                verdict[k.passed],
                f"median started_at - created_at of {len(k.pickup_ms)}; p90 "
                f"{percentile(k.pickup_ms, 0.9):.1f} ms, max {max(k.pickup_ms):.1f} ms",
            ),
            (
                "peak memory (PSS sum)",
                f"{m.peak_mb:.0f} MB",
                f"<= {m.target_mb:g} MB",
                verdict[m.passed],
                f"{len(m.peak.by_pid)} processes at the peak, {m.samples} samples under load",
            ),
            (
                "  RSS sum",
                f"{m.peak_rss_mb:.0f} MB",
                "-",
                "info",
                "at the same sample; counts each shared page once per process",
            ),
            *self.start_rows(),
            *self.mapping_rows(),
        ]
        intro = (
            f"Local cloud (python -m infra.local --no-watch, ORDO_TIME_SCALE={TIME_SCALE:g}) on "
            "127.0.0.1; gateway: sequential keep-alive requests alternating with the same app "
            "under uvicorn,\nboth on the local cloud's moto; pipeline: "
            f"{len(p.jobs)} mixed tasks, {self.concurrency} submitter(s); memory: "
            f"PSS (smaps_rollup) of the local cloud and its processes every "
            f"{SAMPLE_INTERVAL * 1000:.0f} ms "
            "(MB = 10^6 bytes)\n"
        )
        table = tables.aligned(rows, free_last=True)
        return intro + table + "\n\n" + self.breakdown() + "\n\n" + self.summary()

    def start_rows(self) -> list[tuple[str, str, str, str, str]]:
        s = self.starts
        if s is None:
            return []
        in_cloud = (
            f"; in the local cloud, median {statistics.median(s.in_cloud_ms.values()):.1f} ms "
            f"over {len(s.in_cloud_ms)} functions started together"
            if s.in_cloud_ms
            else ""
        )
        return [
            (
                "warm function start (fork to ready)",
                f"{statistics.median(s.forked_ms):.1f} ms",
                "-",
                "info",
                f"{s.function}, median of {len(s.forked_ms)} forks from a ready fork server"
                + in_cloud,
            ),
            (
                "  plain spawn (exec to ready)",
                f"{statistics.median(s.plain_ms):.1f} ms",
                "-",
                "info",
                f"{s.function}, median of {len(s.plain_ms)} python -m infra.local.runtime",
            ),
        ]

    def mapping_rows(self) -> list[tuple[str, str, str, str, str]]:
        k = self.mapping
        if k is None:
            return []
        return [
            (
                "mapping pickup (event source alone)",
                f"{k.median_ms:.1f} ms",
                f"<= {k.target_ms:g} ms",
                "PASS" if k.passed else "FAIL",
                f"median send -> invoke on moto in process: {statistics.median(k.announced_ms):.1f}"
                f" ms told of sends, {statistics.median(k.long_poll_ms):.1f} ms long-polling "
                f"({len(k.announced_ms)} each)",
            )
        ]

    def breakdown(self) -> str:
        g, p, m = self.gateway, self.pipeline, self.memory

        def med(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ms" if values else "n/a"

        cloud_app = statistics.median(g.cloud_app_ms) if g.cloud_app_ms else math.nan
        direct_app = statistics.median(g.direct_app_ms) if g.direct_app_ms else math.nan
        health = statistics.median(g.health_s) * 1000
        lines = [
            "Where the time goes (medians):",
            f"  gateway: inside the app {med(g.cloud_app_ms)} local cloud / "
            f"{med(g.direct_app_ms)} uvicorn; outside it "
            f"{g.cloud_ms - cloud_app:.2f} ms local cloud / {g.direct_ms - direct_app:.2f} ms "
            "uvicorn",
            f"           of which GET /_local/health (gateway HTTP, no function) {health:.2f} ms, "
            f"the rest (event, pipe, Mangum) {g.cloud_ms - cloud_app - health:+.2f} ms; "
            f"moto GetItem from outside {statistics.median(g.moto_s) * 1000:.2f} ms",
            *(
                [
                    "           a ~40 ms GET /_local/health is the delayed-ACK stall of a socket "
                    "without TCP_NODELAY (Nagle)"
                ]
                if health >= NAGLE_SIGNATURE_MS
                else []
            ),
            f"  pipeline: {p.submits_done - p.first_submit:.2f} s to submit; first start "
            f"{(min(j.started for j in p.jobs) - p.first_submit) * 1000:.0f} ms after the first "
            f"submit; per job {med(p.in_worker_ms)} in the worker beyond its delay, "
            f"{med(p.gaps_ms)} between jobs (p90 {percentile(p.gaps_ms, 0.9):.2f} ms)",
            "            moto floor: the worker's GetItem + claim (TransactWriteItems) + "
            "UpdateItem of one job take "
            f"{med([s * 1000 for s in p.moto_floor_s])} straight from here, on an idle cloud",
            f"  pickup: POST /tasks takes {med(self.pickup.submit_ms)}; from created_at: the "
            "job's put and SendMessage, the mapping's ReceiveMessage (told of the message by "
            "moto, served in the cloud's process), the invoke and the worker's GetItem "
            "(python -m bench.laneprofile: each step, and a pickup timeline)",
            "  memory (PSS) at the peak: "
            + ", ".join(f"{name} {value:.0f} MB" for name, value in m.parts(m.peak).items())
            + f"; whole-run peak {mb(m.overall.total_kib):.0f} MB",
        ]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "time_scale": TIME_SCALE,
            "gateway": self.gateway.as_json(),
            "pipeline": self.pipeline.as_json() | {"submit_concurrency": self.concurrency},
            "pickup": self.pickup.as_json(),
            "memory": self.memory.as_json(),
            "warm_start": self.starts.as_json() if self.starts else None,
            "mapping_pickup": self.mapping.as_json() if self.mapping else None,
            "pass": all(ok for _, ok in self.checks),
            "summary": self.summary(),
        }


# --- entry point --------------------------------------------------------------------------


def _stop(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.localcloud",
        description="The local cloud's gateway, pipeline, pickup and memory against targets.",
    )
    parser.add_argument("--requests", type=int, default=500, help="gateway requests per target")
    parser.add_argument("--warmup", type=int, default=50, help="unrecorded requests per target")
    parser.add_argument("--tasks", type=int, default=100, help="pipeline tasks (default 100)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="concurrent pipeline submitters (default 1: back to back on one connection; each "
        "one more can start one more SubmitFunction process)",
    )
    parser.add_argument("--pickups", type=int, default=20, help="pickup samples (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the idle pauses")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if min(args.requests, args.tasks, args.pickups, args.concurrency) < 1 or args.warmup < 0:
        parser.error("--requests, --tasks, --pickups and --concurrency must be at least 1")
    if args.tasks < 2:
        parser.error("--tasks must be at least 2")
    return args


def run(args: argparse.Namespace) -> Report:
    _parent_imports()
    with local_cloud() as cloud:
        log(f"local cloud at {cloud.url}, moto at {cloud.aws_url}; log {CLOUD_LOG}")
        wait_settled(cloud)
        with MemorySampler(cloud) as sampler:
            account = sign_up(cloud.url)
            log(f"signed in as user {account.user_id}")
            with httpx.Client(base_url=cloud.url, timeout=30, headers=account.headers) as client:
                task_id = submit(client, "reverse", "abc")
                await_task(client, task_id)
            probe = f"/tasks/{task_id}"
            with uvicorn_server(cloud.aws_url, probe, account.headers) as direct_url:
                log(f"uvicorn at {direct_url}; log {UVICORN_LOG}")
                log(f"gateway: {args.warmup} + {args.requests} requests per target")
                gateway = measure_gateway(
                    cloud,
                    direct_url,
                    account,
                    task_id,
                    args.requests,
                    args.warmup,
                    TARGET_GATEWAY_RATIO,
                )
            log(f"pipeline: {args.tasks} tasks, {args.concurrency} submitter(s)")
            pipeline, start, end = measure_pipeline(
                cloud.url, account, args.tasks, args.concurrency, TARGET_PIPELINE_MS
            )
            log(f"moto floor: {FLOOR_JOBS} jobs' worker-side DynamoDB calls, straight to moto")
            floor = moto_lane_floor(cloud.aws_url, account.user_id)
            pipeline = dataclasses.replace(pipeline, moto_floor_s=floor)
        peak, overall = sampler.peak(start, end), sampler.peak()
        if peak is None or overall is None:
            raise BenchError("no memory sample was taken during the pipeline load")
        memory = Memory(
            peak=peak,
            overall=overall,
            main_pid=cloud.process.pid,
            functions=dict(sampler.functions),
            samples=sum(start <= s.at <= end for s in sampler.samples),
            target_mb=TARGET_MEMORY_MB,
            fork_servers=frozenset(sampler.fork_servers),
        )
        # On an idle lane: the memory sampler, which reads every process's page tables ten
        # times a second, has stopped.
        log(f"pickup: {args.pickups} tasks on an idle queue")
        pickup = measure_pickup(cloud.url, account, args.pickups, args.seed, TARGET_PICKUP_MS)
        log(f"warm function start: {STARTS} forks and {STARTS} plain spawns of {START_FUNCTION}")
        starts = measure_starts(cloud.aws_url, sampler.ready_ms)
    log(f"mapping pickup: {args.pickups} messages each way, on moto in this process")
    mapping = measure_mapping_pickup(args.pickups, TARGET_MAPPING_PICKUP_MS)
    return Report(
        gateway, pipeline, pickup, memory, args.concurrency, starts=starts, mapping=mapping
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        report = run(args)
    except (BenchError, httpx.HTTPError) as error:
        log(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    print(json.dumps(report.as_json(), indent=2) if args.json else report.table())
    record_figures(report)
    return 0


def record_figures(report: Report) -> None:
    g, p, k, m = report.gateway, report.pipeline, report.pickup, report.memory
    figures.record(
        "memory_pss",
        figures.Figure("local cloud peak memory (PSS)", m.peak_mb, "MB", m.target_mb, 250.0),
    )
    figures.record(
        "lane_overhead",
        figures.Figure("lane overhead per job", p.per_job_ms, "ms", p.target_ms, 12.0),
    )
    figures.record(
        "pickup",
        figures.Figure(
            "pickup on an idle lane, p50",
            k.median_ms,
            "ms",
            k.target_ms,
            5.0,
            f"p90 {percentile(k.pickup_ms, 0.9):.1f} ms",
        ),
    )
    figures.record(
        "gateway", figures.Figure("gateway against direct uvicorn", g.ratio, "x", g.target)
    )
    if report.mapping is not None:
        figures.record(
            "mapping_pickup",
            figures.Figure(
                "event source mapping pickup, p50",
                report.mapping.median_ms,
                "ms",
                report.mapping.target_ms,
            ),
        )


if __name__ == "__main__":
    sys.exit(main())
