"""The local cloud's warm start and a burst of clients, each against its target.

* warm start: ``python -m infra.local --port P`` as ``make dev`` runs it (the venv in place, one
  unrecorded start first so the template cache and the bytecode are warm), timed from the spawn
  to the first ``200`` of ``GET /health`` (HealthFunction behind the gateway); the median of
  ``--rounds`` starts, with each phase's median from ``GET /_local/startup``;
* burst: ``--clients`` connections at once, one ``GET /health`` each, once the local cloud has
  started; p50 and p99 latency and how many got 200, 429 or no answer at all. First with the
  template's throttle (``ApiThrottlingRateLimit``/``ApiThrottlingBurstLimit``), then with
  API Gateway's account limits (10,000 a second, a burst of 5,000) so every request runs.

    python -m bench.startup [--rounds N] [--clients N] [--json]

The local cloud's log is kept in .ordo/bench-startup.log.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import figures
from bench.common import free_port
from bench.localcloud import BenchError, log, percentile, stop_process
from infra.local.stack import ACCOUNT_LIMIT_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / ".ordo" / "bench-startup.log"
TARGET_START_S = 2.0
NO_ANSWER = "no answer"


def get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Started:
    port: int
    process: subprocess.Popen[bytes]
    health_s: float  # from the spawn to the first 200 of GET /health


@contextlib.contextmanager
def local_cloud(
    parameters: Sequence[str] = (), timeout: float = 120, attempts: int = 3
) -> Iterator[Started]:
    """``python -m infra.local`` as a new user starts it; stopped with SIGINT as ctrl+c. A free
    port taken by someone else before the local cloud binds it is tried again."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDO_")}
    overrides = ["--parameter-overrides", *parameters] if parameters else []
    LOG.parent.mkdir(exist_ok=True)
    logged = LOG.stat().st_size if LOG.exists() else 0
    with LOG.open("ab") as output:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local", "--port", str(port), *overrides],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        while process.poll() is None:
            if time.monotonic() - started > timeout:
                raise BenchError(f"GET /health did not answer in {timeout:.0f} s; see {LOG}")
            with contextlib.suppress(OSError):
                if get(port, "/health", timeout=timeout)[0] == 200:
                    yield Started(port, process, time.monotonic() - started)
                    return
            time.sleep(0.005)
        with LOG.open("rb") as output:
            output.seek(logged)
            port_taken = b"cannot listen on" in output.read()
        if not port_taken or attempts <= 1:
            raise BenchError(f"the local cloud exited ({process.returncode}); see {LOG}")
        with local_cloud(parameters, timeout, attempts - 1) as again:
            yield again
    finally:
        stop_process(process, signal.SIGINT, 20)


def startup_phases(port: int, timeout: float = 120) -> dict[str, float]:
    """The local cloud's own account of its start, once the background part has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = json.loads(get(port, "/_local/startup")[1])
        if report["ready"]:
            return {name: float(ms) for name, ms in report["phases_ms"].items()}
        time.sleep(0.1)
    raise BenchError(f"the local cloud did not finish starting in {timeout:.0f} s")


@dataclass
class Burst:
    clients: int
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    def percentile_ms(self, fraction: float) -> float:
        return percentile(self.latencies_s, fraction) * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "p50_ms": round(self.percentile_ms(0.50), 1),
            "p99_ms": round(self.percentile_ms(0.99), 1),
            "statuses": dict(self.statuses),
        }


def burst(port: int, clients: int) -> Burst:
    """``clients`` connections at once, one ``GET /health`` each."""
    ready = threading.Barrier(clients)

    def one(_: int) -> tuple[str, float]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            ready.wait()
            started = time.perf_counter()
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            return str(response.status), time.perf_counter() - started
        except OSError:
            return NO_ANSWER, time.perf_counter() - started
        finally:
            connection.close()

    result = Burst(clients)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for status, seconds in pool.map(one, range(clients)):
            result.statuses[status] += 1
            result.latencies_s.append(seconds)
    return result


def measure(rounds: int, clients: int) -> dict[str, Any]:
    log("an unrecorded start, so that caches are warm")
    with local_cloud() as first:
        startup_phases(first.port)
    starts: list[float] = []
    phases: dict[str, list[float]] = {}
    for number in range(rounds):
        with local_cloud() as cloud:
            starts.append(cloud.health_s)
            for name, ms in startup_phases(cloud.port).items():
                phases.setdefault(name, []).append(ms)
            log(f"start {number + 1}/{rounds}: GET /health 200 after {cloud.health_s:.2f} s")
            if number == rounds - 1:
                throttled = burst(cloud.port, clients)
    with local_cloud(ACCOUNT_LIMIT_OVERRIDES) as cloud:
        startup_phases(cloud.port)
        unthrottled = burst(cloud.port, clients)
    median_s = statistics.median(starts)
    return {
        "warm_start": {
            "median_s": round(median_s, 3),
            "rounds_s": [round(s, 3) for s in starts],
            "target_s": TARGET_START_S,
            "passed": median_s <= TARGET_START_S,
            "phases_ms": {name: round(statistics.median(ms), 1) for name, ms in phases.items()},
        },
        "burst_template_throttle": throttled.as_json(),
        "burst_account_limits": unthrottled.as_json(),
    }


def report(results: dict[str, Any]) -> str:
    start = results["warm_start"]
    lines = [
        "local cloud start-up and bursts",
        f"  warm start to GET /health 200: median {start['median_s']:.2f} s "
        f"(target <= {start['target_s']:.1f} s) {'PASS' if start['passed'] else 'FAIL'}",
        f"    rounds: {', '.join(f'{s:.2f}' for s in start['rounds_s'])} s",
        "    phases (median ms; the serving ones add up to the start, the rest run behind it):",
    ]
    lines += [f"      {name:<28} {ms:8.1f}" for name, ms in start["phases_ms"].items()]
    for key, title in (
        ("burst_template_throttle", "template throttle"),
        ("burst_account_limits", "account limits"),
    ):
        figure = results[key]
        statuses = ", ".join(f"{n} x {status}" for status, n in sorted(figure["statuses"].items()))
        lines.append(
            f"  burst of {figure['clients']} clients on GET /health ({title}): "
            f"p50 {figure['p50_ms']:.0f} ms, p99 {figure['p99_ms']:.0f} ms; {statuses}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="recorded starts (default 5)")
    parser.add_argument("--clients", type=int, default=200, help="clients in the burst")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    try:
        results = measure(args.rounds, args.clients)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.json else report(results))
    start, throttled = results["warm_start"], results["burst_account_limits"]
    figures.record(
        "warm_start",
        figures.Figure("warm start to GET /health 200", start["median_s"], "s", start["target_s"]),
    )
    answered = sum(n for status, n in throttled["statuses"].items() if status != NO_ANSWER)
    figures.record(
        "burst",
        figures.Figure(
            f"burst of {throttled['clients']} clients on /health, p99",
            throttled["p99_ms"],
            "ms",
            None,
            detail=f"p50 {throttled['p50_ms']:.0f} ms; {answered}/{throttled['clients']} answered",
        ),
    )
    no_answer = any(
        results[key]["statuses"].get(NO_ANSWER)
        for key in ("burst_template_throttle", "burst_account_limits")
    )
    return 0 if results["warm_start"]["passed"] and not no_answer else 1


if __name__ == "__main__":
    sys.exit(main())
