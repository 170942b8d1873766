"""``ordo local invoke FUNCTION``: run one function of the template once, as ``sam local
invoke`` does, without Docker.

The function runs in a process of its own, as the local cloud runs it (``FunctionHost``): the
template's handler, environment, layers and timeout. Its AWS calls go to ``AWS_ENDPOINT_URL``,
else to the local cloud running on ``ORDO_PORT`` (its ``/_local/health`` names its endpoint;
the command waits until that cloud's bootstrap has stored the token keys), else to fresh
resources: moto in this process, with the template's tables, queues and token keys. The
return value is printed as JSON on stdout; the function's own output (its prints and
logs) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.cloud import REGION, LocalCloud, lambda_environment
from infra.local.functions import FunctionHost
from infra.local.invoke import Invocation, Outcome
from infra.local.ordo_app import OrdoSetup
from infra.local.stack import TEMPLATE, Function, Stack

EXIT_OK = 0
EXIT_FUNCTION_ERROR = 1  # the handler raised, or its process failed to start or died
EXIT_USAGE = 2  # no such function, an unreadable event or --env-vars, a local cloud not up
EXIT_TIMEOUT = 124  # as timeout(1): the invocation outlived the function's Timeout
EXIT_INTERRUPTED = 130
DEFAULT_PORT = "3000"
GLOBAL_SECTION = "Parameters"
BOOTSTRAP_WAIT_S = 60.0  # how long a running local cloud may take to store its token keys


class UsageError(Exception):
    """Input that cannot run: the message says what to fix."""


# --- --env-vars, as SAM reads it -------------------------------------------------------------


def _env_value(value: Any) -> str:
    """SAM's stringification: booleans as JSON spells them, objects, lists and null as ""."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


@dataclass(frozen=True)
class EnvVars:
    """``--env-vars FILE``: ``{"Parameters": {...}, "LogicalId": {...}}``, as ``sam local invoke``
    reads it. ``Parameters`` apply to every function and a function's own object takes
    precedence; only variables the template declares for the function are overridden."""

    parameters: dict[str, str] = field(default_factory=dict)
    functions: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> EnvVars:
        """``ValueError`` names what is wrong."""
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError('expected a JSON object: {"FunctionLogicalId": {"VAR": "value"}}')
        sections: dict[str, dict[str, str]] = {}
        for name, variables in document.items():
            if not isinstance(variables, dict):
                raise ValueError(f"{name!r} must be an object of variables, not {variables!r}")
            sections[name] = {key: _env_value(value) for key, value in variables.items()}
        return cls(sections.pop(GLOBAL_SECTION, {}), sections)

    @classmethod
    def load(cls, source: str) -> EnvVars:
        try:
            return cls.parse(Path(source).read_text())
        except OSError as exc:
            raise UsageError(f"--env-vars: cannot read {source}: {exc.strerror}") from exc
        except ValueError as exc:
            raise UsageError(f"--env-vars: {source}: {exc}") from exc

    def _section(self, function: Function, function_name: str) -> dict[str, str]:
        for name in (function.logical_id, function_name):
            if name in self.functions:
                return self.functions[name]
        return {}

    def for_function(self, function: Function, function_name: str) -> dict[str, str]:
        """The overrides for ``function`` (its logical id, or else its function name, names its
        object), limited to the variables its template environment declares."""
        chosen = self.parameters | self._section(function, function_name)
        return {name: value for name, value in chosen.items() if name in function.environment}

    def ignored(self, function: Function, function_name: str) -> list[str]:
        """The function's own variables that its template does not declare."""
        return sorted(set(self._section(function, function_name)) - set(function.environment))


# --- the event, the function and the endpoint -----------------------------------------------


def read_event(source: str | None) -> Any:
    """The event: a JSON file, ``-`` for stdin, or ``{}`` when none is given."""
    if source is None:
        return {}
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        return json.loads(text)
    except OSError as exc:
        raise UsageError(f"--event: cannot read {name}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"--event: {name} is not valid JSON: {exc}") from exc


def pick_function(functions: Mapping[str, Function], name: str) -> Function:
    if name in functions:
        return functions[name]
    raise UsageError(f"no function {name!r} in the template; choose one of: {', '.join(functions)}")


def _local_health(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """``GET /_local/health`` of the local cloud on ``ORDO_PORT``, if one answers there."""
    port = environ.get("ORDO_PORT", DEFAULT_PORT)
    url = f"http://{environ.get('ORDO_HOST', '127.0.0.1')}:{port}/_local/health"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(url, timeout=2) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None
    endpoint = health.get("aws_endpoint") if isinstance(health, dict) else None
    return health if isinstance(endpoint, str) and endpoint else None


def running_local_cloud(environ: Mapping[str, str], wait_s: float = BOOTSTRAP_WAIT_S) -> str | None:
    """The AWS endpoint of the local cloud on ``ORDO_PORT``, if one answers there, once its
    bootstrap has stored the token keys (a function reading them sooner would fail). Raises
    ``UsageError`` if that bootstrap failed, or has not ended within ``wait_s``."""
    health = _local_health(environ)
    if health is None:
        return None
    port = environ.get("ORDO_PORT", DEFAULT_PORT)
    deadline = time.monotonic() + wait_s
    told = False
    while not health.get("bootstrapped", True):  # a local cloud that does not say: ready
        if health.get("startup_error"):
            raise UsageError(
                f"the local cloud on port {port} failed to start: {health['startup_error']} "
                "(see its log; restart it)"
            )
        if time.monotonic() > deadline:
            raise UsageError(
                f"the local cloud on port {port} has not finished starting after {wait_s:.0f} s "
                "(GET /_local/startup shows how far it is); try again, or restart it"
            )
        if not told:
            print(
                f"ordo: waiting for the local cloud on port {port} to finish starting",
                file=sys.stderr,
            )
            told = True
        time.sleep(0.05)
        health = _local_health(environ)
        if health is None:
            raise UsageError(f"the local cloud on port {port} stopped answering while starting")
    return str(health["aws_endpoint"])


@contextmanager
def aws_endpoint(stack: Stack, environ: Mapping[str, str]) -> Iterator[str]:
    """``AWS_ENDPOINT_URL``, a running local cloud's endpoint, or fresh resources in moto."""
    port = environ.get("ORDO_PORT", DEFAULT_PORT)
    if environ.get("AWS_ENDPOINT_URL"):
        yield environ["AWS_ENDPOINT_URL"]
        return
    running = running_local_cloud(environ)
    if running:
        print(f"ordo: using the local cloud on port {port} (AWS at {running})", file=sys.stderr)
        yield running
        return
    print(
        f"ordo: no AWS_ENDPOINT_URL and no local cloud on port {port}: "
        "using fresh resources (moto, in this process)",
        file=sys.stderr,
    )
    setup = OrdoSetup.from_env(environ)
    cloud = LocalCloud(env_overrides=dict(setup.overrides), setup=setup)
    cloud.stack = stack  # already loaded: start_resources does not load it again
    try:
        cloud.start_resources()
        yield cloud.aws_url
    finally:
        cloud.stop()


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Within: whatever is written to fd 1, by this process or the function's, goes to stderr,
    so that stdout carries nothing but the answer."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def invoke(function: Function, environment: dict[str, str], event: Any) -> Invocation:
    host = FunctionHost(function, environment)
    try:
        return host.invoke(event)
    finally:
        host.close()  # kills the process, whatever happened: nothing outlives the command


def report(function: Function, result: Invocation) -> int:
    """The answer on stdout, or what went wrong on stderr; the exit code."""
    name = function.logical_id
    if result.outcome is Outcome.OK:
        print(json.dumps(result.payload), flush=True)
        return EXIT_OK
    if result.outcome is Outcome.TIMEOUT:
        print(
            f"ordo: {name} timed out after {function.timeout} s (its Timeout in the template); "
            "its process was killed",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    if result.error in ("Runtime.ExitError", "Runtime.InitError"):
        print(f"ordo: {name}: its process failed ({result.error})", file=sys.stderr)
    else:
        print(f"ordo: {name}: handler error: {result.error}", file=sys.stderr)
    return EXIT_FUNCTION_ERROR


# --- the command -----------------------------------------------------------------------------


def parser(prog: str) -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one function of the template once, as `sam local invoke` does, "
        "without Docker.\nPrints its return value as JSON on stdout, its logs on stderr.",
        epilog=f"exit codes: {EXIT_OK} ok, {EXIT_FUNCTION_ERROR} handler error, "
        f"{EXIT_USAGE} bad arguments or a local cloud that failed to start, "
        f"{EXIT_TIMEOUT} timed out.\n"
        f"example: {prog} WorkerFunction --event infra/events/worker.json",
    )
    cli.add_argument("function", metavar="FUNCTION", help="the function's logical id")
    cli.add_argument(
        "--event", "-e", metavar="FILE", help="the event: a JSON file, or - for stdin (default {})"
    )
    cli.add_argument(
        "--env-vars",
        "-n",
        metavar="FILE",
        help='SAM\'s JSON: {"Parameters": {"VAR": "v"}, "FunctionLogicalId": {"VAR": "v"}}',
    )
    cli.add_argument(
        "--template",
        "-t",
        type=Path,
        default=TEMPLATE,
        metavar="FILE",
        help="the SAM template (default: template.yaml); CodeUri is relative to it",
    )
    return cli


def main(argv: list[str] | None = None, prog: str = "ordo local invoke") -> int:
    args = parser(prog).parse_args(argv)
    environ = dict(os.environ)
    try:
        stack = Stack.load(region=REGION, path=args.template)
        function = pick_function(stack.functions(), args.function)
        event = read_event(args.event)
        env_vars = EnvVars.load(args.env_vars) if args.env_vars else EnvVars()
    except OSError as exc:
        print(f"ordo: cannot read the template {args.template}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"ordo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    function_name = stack.physical[function.logical_id]["Ref"]
    ignored = env_vars.ignored(function, function_name)
    if ignored:
        print(
            f"ordo: --env-vars: not in {function.logical_id}'s template environment, so "
            f"ignored (as SAM does): {', '.join(ignored)}",
            file=sys.stderr,
        )
    try:
        with stdout_to_stderr(), aws_endpoint(stack, environ) as aws_url:
            setup = OrdoSetup.from_env(environ)
            environment = lambda_environment(
                function, stack, aws_url, setup.overrides, setup
            ) | env_vars.for_function(function, function_name)
            result = invoke(function, environment, event)
    except UsageError as exc:
        print(f"ordo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ordo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return report(function, result)


if __name__ == "__main__":
    sys.exit(main(prog="python -m infra.local.invoke_cli"))
