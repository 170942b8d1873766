"""Where one job's time goes in the local cloud: every step of its path, timed where it runs.

    python -m bench.laneprofile [--tasks N] [--pickups N]

Starts the local cloud (as ``bench.localcloud`` does, ``ORDO_TIME_SCALE=0.01``) with timers in
three places, then runs ``--tasks`` tasks back to back (the pipeline) and ``--pickups`` tasks
on an idle queue, and prints, per job of each phase, the calls made and their time:

* the local cloud's process (this module's ``serve``): the gateway's requests by function, the
  event source mapping's steps (receive, invoke, delete), and moto by operation, both as the
  whole WSGI request and as the backend call alone (which includes waiting for the DynamoDB
  lock);
* every function process (preloaded with ``ORDO_LOCAL_PRELOAD=bench.laneprofile``): its
  botocore calls by operation, as the function sees them; in the worker also the runner's own
  time (``Worker._execute``, the simulated delay included) and each message's handling.

For the idle pickups it also prints their p50 (``started_at - created_at``) and a timeline:
per step, when it started and ended, in ms after the submit function's job put began (median
over the pickups), up to the worker's claim.

The timers cost a few microseconds a call. Nothing here runs unless this module starts it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MODULE = "bench.laneprofile"
PROFILE_DIR = "ORDO_LANE_PROFILE"  # where every process writes its timings
_records: list[tuple[str, str, float, float]] = []  # (where, what, start epoch, seconds)


def _timed(where: str, what: Callable[..., str], original: Callable[..., Any]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started, clock = time.time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _records.append((where, what(*args), started, time.perf_counter() - clock))

    return timed


def _patch(owner: Any, name: str, where: str, what: Callable[..., str]) -> None:
    setattr(owner, name, _timed(where, what, getattr(owner, name)))


def _dump(path: Path) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in _records))


class _Appender(list[tuple[str, str, float, float]]):
    """Records written as they come: a function process is killed, never exits."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("a", buffering=1)

    def append(self, record: tuple[str, str, float, float]) -> None:
        self._file.write(json.dumps(record) + "\n")


# --- inside a function process (ORDO_LOCAL_PRELOAD) ---------------------------------------


def _probe_function(directory: Path) -> None:
    from botocore.client import BaseClient

    global _records  # noqa: PLW0603 - this process's records go straight to its file
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "?").removeprefix("ordo-")
    _records = _Appender(directory / f"{function}-{os.getpid()}.jsonl")
    _patch(BaseClient, "_make_api_call", function, lambda _client, operation, _params: operation)
    if function == "WorkerFunction":
        from ordo.worker import Worker

        _patch(Worker, "_execute", function, lambda *_: "runner (delay included)")
        _patch(Worker, "handle", function, lambda *_: "handle one message")
        _patch(Worker, "run_batch", function, lambda *_: "handler (run_batch)")


# --- inside the local cloud's process ------------------------------------------------------


def _operation(_app: Any, environ: dict[str, Any], _start: Any) -> str:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rsplit(".", 1)[-1] or str(environ.get("QUERY_STRING", ""))[:40] or "?"


def _probe_cloud() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.models import SQSBackend

    from infra.local import esm, gateway, moto_fidelity

    moto_fidelity.apply()  # first, so the backend timers include its patches and lock
    _patch(DomainDispatcherApplication, "__call__", "moto request", _operation)
    for backend, names in (
        (DynamoDBBackend, ("get_item", "put_item", "update_item", "query", "transact_write_items")),
        (
            SQSBackend,
            ("send_message", "receive_message", "delete_message", "change_message_visibility"),
        ),
    ):
        for name in names:
            _patch(backend, name, "moto backend", lambda *_, n=name: n)
    source = esm.SqsEventSource
    _patch(source, "_receive", "esm", lambda _self, wait: f"receive (wait {wait} s)")
    _patch(source, "_invoke", "esm", lambda *_: "invoke worker (round trip)")
    _patch(source, "_delete", "esm", lambda *_: "delete batch")
    _patch(gateway._Handler, "_handle", "gateway", lambda h: f"{h.command} {_route(h.path)}")


def _route(path: str) -> str:
    parts = path.partition("?")[0].split("/")
    return "/".join("{id}" if len(part) == 32 else part for part in parts)


def serve(argv: list[str]) -> int:
    """``python -m infra.local`` with the cloud-side timers; writes them on exit."""
    from infra.local.__main__ import main

    directory = Path(os.environ[PROFILE_DIR])
    _probe_cloud()
    try:
        return main(argv)
    finally:
        _dump(directory / "cloud.jsonl")


# --- the run and its report ----------------------------------------------------------------


def run(tasks: int, pickups: int, directory: Path) -> dict[str, tuple[float, float, int]]:
    """Runs both phases; their (start, end, jobs) by name."""
    from bench import localcloud as bench

    env = {"ORDO_LOCAL_PRELOAD": MODULE, PROFILE_DIR: str(directory)}
    command = [sys.executable, "-m", MODULE, "serve"]
    phases: dict[str, tuple[float, float, int]] = {}
    with bench.local_cloud(env=env, command=command) as cloud:
        bench.wait_settled(cloud)
        account = bench.sign_up(cloud.url)
        import httpx

        with httpx.Client(base_url=cloud.url, timeout=30, headers=account.headers) as client:
            bench.await_task(client, bench.submit(client, "reverse", "warm-up"))
        started = time.time()
        bench.measure_pipeline(cloud.url, account, tasks, 1, bench.TARGET_PIPELINE_MS)
        phases["pipeline"] = (started, time.time(), tasks)
        started = time.time()
        pickup = bench.measure_pickup(cloud.url, account, pickups, 0, bench.TARGET_PICKUP_MS)
        phases["pickup"] = (started, time.time(), pickups)
        print(
            f"pickup, started_at - created_at: p50 {pickup.median_ms:.2f} ms, "
            f"p90 {bench.percentile(pickup.pickup_ms, 0.9):.2f} ms"
        )
    return phases


def _load(directory: Path) -> Iterator[tuple[str, str, float, float]]:
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            where, what, started, seconds = json.loads(line)
            yield where, what, started, seconds


def report(directory: Path, phases: dict[str, tuple[float, float, int]]) -> str:
    records = list(_load(directory))
    lines = []
    for phase, (start, end, jobs) in phases.items():
        grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
        for where, what, started, seconds in records:
            if start <= started <= end:
                grouped[(where, what)].append(seconds * 1000)
        lines += [
            "",
            f"{phase}: {jobs} jobs in {end - start:.2f} s (status polls included)",
            f"  {'where':<16} {'what':<34} {'per job':>8} {'median ms':>10} {'ms per job':>11}",
        ]
        for (where, what), values in sorted(grouped.items()):
            lines.append(
                f"  {where:<16} {what:<34} {len(values) / jobs:>8.2f} "
                f"{statistics.median(values):>10.2f} {sum(values) / jobs:>11.2f}"
            )
    return "\n".join(lines)


def pickup_timeline(directory: Path, start: float, end: float) -> str:
    """Each idle pickup's steps, from the submit function's job put (just after ``created_at``)
    to the worker's claim (just after ``started_at``): per step, the median start and end in ms
    after the put began, and how many pickups had it."""
    records = sorted((r for r in _load(directory) if start <= r[2] <= end), key=lambda r: r[2])
    puts = [r[2] for r in records if r[:2] == ("SubmitFunction", "TransactWriteItems")]
    claims = [r[2] for r in records if r[:2] == ("WorkerFunction", "TransactWriteItems")]
    steps: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for put in puts:
        claim = next((c for c in claims if c >= put), None)
        if claim is None:
            continue
        for where, what, started, seconds in records:
            if put <= started <= claim and not what.startswith("GET "):
                offset = (started - put) * 1000
                steps[(where, what)].append((offset, offset + seconds * 1000))
    lines = [
        "",
        f"pickup timeline: {len(puts)} pickups, ms after the job's put began",
        f"  {'where':<16} {'what':<34} {'seen':>5} {'start':>7} {'end':>7}",
    ]
    order = sorted(steps.items(), key=lambda item: statistics.median(s for s, _ in item[1]))
    for (where, what), spans in order:
        lines.append(
            f"  {where:<16} {what:<34} {len(spans):>5} "
            f"{statistics.median(s for s, _ in spans):>7.2f} "
            f"{statistics.median(e for _, e in spans):>7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        return serve(args[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.laneprofile", description=__doc__)
    parser.add_argument("--tasks", type=int, default=60, help="pipeline tasks (default 60)")
    parser.add_argument("--pickups", type=int, default=10, help="idle pickups (default 10)")
    parsed = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="laneprofile-") as folder:
        phases = run(parsed.tasks, parsed.pickups, Path(folder))
        print(report(Path(folder), phases))
        if "pickup" in phases:
            print(pickup_timeline(Path(folder), *phases["pickup"][:2]))
    return 0


if PROFILE_DIR in os.environ and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
    _probe_function(Path(os.environ[PROFILE_DIR]))

if __name__ == "__main__":
    sys.exit(main())
