"""How fast the lane recovers from a failed job, and what one job per invocation costs.

Two measurements through the local cloud, at ``ORDO_TIME_SCALE=0.01``, from the timestamps the
worker itself stores (``finished_at``, ``started_at``), so polling adds nothing:

* recovery: 20 poison jobs (a runner raising ``ZeroDivisionError``), and 5 runaway ones (a
  runner that never yields, stopped at its kind's budget), each followed by a good task, all
  queued behind a blocker so that every next job is already waiting; the time from the poison
  job's end to the next job's start, p50 and max. The recovery bound at
  this scale is 10 s x 0.01 = 100 ms.
* batch size: the lane's own cost per job at each of ``--batch-sizes`` (1, 2 and 5), each on
  a copy of template.yaml with the worker's BatchSize, its timeout and the queue's visibility
  timeout set as tests/test_template.py demands: N tasks queued behind the blockers, then (last
  finish - first start - the simulated delays) / N; the median of ``--runs`` runs.

The fault kinds come from ``tests/faults.py``, preloaded into the local cloud's functions with
``ORDO_LOCAL_PRELOAD`` (the same injection the e2e fault tests use).

    python -m bench.recovery [--poison N] [--runaway N] [--tasks N] [--runs N]
                             [--batch-sizes 1,2,5] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.localcloud import (
    ROOT,
    TIME_SCALE,
    BenchError,
    _dynamodb,
    local_cloud,
    log,
    parse_time,
    sign_up,
)

TARGET_RECOVERY_MS = 100.0
TARGET_BATCH_COST_MS = 10.0  # issue 13: BatchSize 1 only if it costs less than this per job
PRELOAD = {"ORDO_LOCAL_PRELOAD": "tests.faults"}
TASK = {"kind": "reverse", "text": "abc"}
# 2.5 s at the bench's time scale, just inside the fault kind's maximum (3 s); the jobs measured
# queue up behind a few of them, so the lane never waits for the next one to arrive.
BLOCKER = {"kind": "fault", "action": "sleep", "seconds": 250}
BLOCKERS = 4


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/jobs", json=body)
    if response.status_code != 202:
        raise BenchError(f"POST /jobs -> {response.status_code} {response.text}")
    return str(response.json()["job_id"])


def wait_all(client: httpx.Client, job_ids: Sequence[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for job_id in job_ids:
        while client.get(f"/status/{job_id}").json()["status"] not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise BenchError(f"job {job_id} did not finish in {timeout:.0f} s")
            time.sleep(0.1)


def all_queued(jobs: Jobs, blockers: Sequence[str]) -> None:
    """Called right after the last submit: the lane must still be busy with the blockers."""
    if jobs.item(blockers[-1]).get("finished_at"):
        raise BenchError("the lane reached the jobs measured before all were queued; use fewer")


class Jobs:
    """The worker's own timestamps, read from the local cloud's table."""

    def __init__(self, aws_url: str) -> None:
        self.dynamodb = _dynamodb(aws_url)
        names = self.dynamodb.list_tables()["TableNames"]
        (self.table,) = [name for name in names if "JobsTable" in name]

    def item(self, job_id: str) -> dict[str, Any]:
        from ordo.storage.jobs import job_key

        key = job_key(job_id)
        item: dict[str, Any] = self.dynamodb.get_item(TableName=self.table, Key=key)["Item"]
        return item

    def times(self, job_id: str) -> tuple[float, float]:
        item = self.item(job_id)
        return parse_time(item["started_at"]["S"]), parse_time(item["finished_at"]["S"])


@dataclass
class Recovery:
    cause: str
    samples: int
    p50_ms: float
    max_ms: float
    passed: bool


def measure_recovery(
    url: str, jobs: Jobs, poison: dict[str, Any], count: int, cause: str
) -> Recovery:
    account = sign_up(url)
    with httpx.Client(base_url=url, headers=account.headers, timeout=30) as client:
        # Every pair waits behind the blocker, so a gap is the lane's recovery, never the time
        # the next job took to arrive.
        blockers = [submit(client, BLOCKER) for _ in range(BLOCKERS)]
        pairs = [(submit(client, poison), submit(client, TASK)) for _ in range(count)]
        all_queued(jobs, blockers)
        wait_all(client, [job for pair in pairs for job in pair])
    gaps = [(jobs.times(after)[0] - jobs.times(failed)[1]) * 1000 for failed, after in pairs]
    p50, worst = statistics.median(gaps), max(gaps)
    return Recovery(cause, len(gaps), p50, worst, worst <= TARGET_RECOVERY_MS)


@dataclass
class BatchCost:
    batch_size: int
    tasks: int
    per_job_ms: float  # the median of the runs
    runs_ms: list[float]


def measure_batch(url: str, jobs: Jobs, tasks: int) -> float:
    """One run: ``tasks`` queued behind the blockers; the lane's own milliseconds per job."""
    account = sign_up(url)
    delay = 2.0 * TIME_SCALE  # reverse's simulated delay
    with httpx.Client(base_url=url, headers=account.headers, timeout=30) as client:
        blockers = [submit(client, BLOCKER) for _ in range(BLOCKERS)]
        ids = [submit(client, TASK) for _ in range(tasks)]  # queued while the blockers run
        all_queued(jobs, blockers)
        wait_all(client, ids)
    times = [jobs.times(job_id) for job_id in ids]
    span = max(end for _, end in times) - min(start for start, _ in times)
    return (span - tasks * delay) / tasks * 1000


def batch_template(batch_size: int) -> Path:
    """template.yaml with the worker at ``batch_size``, its timeout (and the reconciler's view
    of it) and the queue's visibility timeout scaled to fit, as tests/test_template.py demands.
    It sits beside template.yaml, since CodeUri is relative to the template."""
    from ordo.aws import sdk_call_budget
    from ordo.registry import KINDS
    from ordo.worker import job_margin

    per_job = KINDS.longest_budget(time_scale=1.0) + job_margin(sdk_call_budget(0.5, 1.5, 1))
    timeout = math.ceil((batch_size * per_job + 1) / 10) * 10
    text = (ROOT / "template.yaml").read_text()
    patterns = {
        r"(Queue: !GetAtt JobsQueue\.Arn\n(?:\s*#.*\n)*\s*BatchSize: )\d+": batch_size,
        r"(\n      Timeout: )\d+(?=\n      ReservedConcurrentExecutions: 1\n)": timeout,
        r"(JobsQueue:\n    Type: AWS::SQS::Queue\n(?:.*\n)*?\s*VisibilityTimeout: )\d+": 6
        * timeout,
        r"(ORDO_WORKER_TIMEOUT_SECONDS: )\d+": timeout,
    }
    for pattern, value in patterns.items():
        text, found = re.subn(pattern, rf"\g<1>{value}", text, count=1)
        if found != 1:
            raise BenchError(f"template.yaml changed: {pattern!r} matches nothing")
    path = ROOT / f".ordo-bench-batch{batch_size}.template.yaml"
    path.write_text(text)
    return path


@dataclass
class Report:
    recovery: list[Recovery]
    batch: list[BatchCost]

    def cost_against_largest(self, batch_size: int) -> float:
        """What ``batch_size`` costs per job more than the largest batch measured."""
        by_size = {cost.batch_size: cost.per_job_ms for cost in self.batch}
        return by_size[batch_size] - by_size[max(by_size)]

    def render(self) -> str:
        lines = [f"recovery at ORDO_TIME_SCALE={TIME_SCALE} (target <= {TARGET_RECOVERY_MS} ms)"]
        for r in self.recovery:
            verdict = "PASS" if r.passed else "FAIL"
            lines.append(
                f"  {r.cause:<22} n={r.samples:<3} p50 {r.p50_ms:6.1f} ms  max {r.max_ms:6.1f} ms"
                f"  {verdict}"
            )
        largest = max(cost.batch_size for cost in self.batch)
        lines.append(f"lane cost per job by worker batch size (against BatchSize {largest})")
        for cost in self.batch:
            runs = ", ".join(f"{run:.1f}" for run in cost.runs_ms)
            lines.append(
                f"  BatchSize {cost.batch_size}: {cost.per_job_ms:6.1f} ms per job"
                f" ({self.cost_against_largest(cost.batch_size):+5.1f} ms; median of {runs};"
                f" {cost.tasks} tasks each)"
            )
        lines.append(f"  issue 13: BatchSize 1 only if it costs under {TARGET_BATCH_COST_MS} ms")
        return "\n".join(lines)


def run(args: argparse.Namespace) -> Report:
    recovery: list[Recovery] = []
    batch: list[BatchCost] = []
    with local_cloud(env=PRELOAD) as cloud:
        jobs = Jobs(cloud.aws_url)
        log(f"recovery from {args.poison} poison jobs")
        poison = {"kind": "fault", "action": "raise", "error": "ZeroDivisionError"}
        recovery.append(measure_recovery(cloud.url, jobs, poison, args.poison, "runner raised"))
        log(f"recovery from {args.runaway} runaway jobs")
        runaway = {"kind": "fault", "action": "loop"}
        recovery.append(measure_recovery(cloud.url, jobs, runaway, args.runaway, "runner overran"))
    for size in args.batch_sizes:
        template = batch_template(size)
        try:
            with local_cloud(env=PRELOAD, args=["--template", str(template)]) as cloud:
                runs = []
                for run_number in range(1, args.runs + 1):
                    log(f"lane cost with BatchSize {size}, run {run_number} ({args.tasks} tasks)")
                    runs.append(measure_batch(cloud.url, Jobs(cloud.aws_url), args.tasks))
        finally:
            template.unlink(missing_ok=True)
        batch.append(BatchCost(size, args.tasks, statistics.median(runs), runs))
    return Report(recovery, batch)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument("--poison", type=int, default=20)
    parser.add_argument("--runaway", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5, help="runs per batch size (median)")
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 5],
        help="worker batch sizes to compare (default 1,2,5)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench.recovery: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "recovery": [asdict(r) for r in report.recovery],
                    "batch": [asdict(b) for b in report.batch],
                },
                indent=2,
            )
        )
    else:
        print(report.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
