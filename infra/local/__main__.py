"""``python -m infra.local`` (``make dev``): start the local cloud in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import signal
import sys
import threading
from pathlib import Path

from infra.local.cloud import LocalCloud
from infra.local.ordo_app import OrdoSetup
from infra.local.stack import TEMPLATE

_SAM_ENTRY = re.compile(r"ParameterKey=([^,=]+),ParameterValue=(.*)", re.DOTALL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("ORDO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ORDO_PORT", "3000")))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("ORDO_AWS_PORT", "0")))
    parser.add_argument("--no-watch", action="store_true", help="do not reload changed code")
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as sam deploy takes them: KEY=VALUE or "
        "ParameterKey=KEY,ParameterValue=VALUE, as separate words or in one quoted string "
        "(e.g. 'ApiThrottlingRateLimit=1000 ApiThrottlingBurstLimit=2000')",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE,
        help="the SAM template to run (default: template.yaml); CodeUri is relative to it",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    try:
        timeouts = LocalCloud.timeouts_from(os.environ)
        parameters = parameter_overrides(args.parameter_overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    setup = OrdoSetup.from_env(os.environ)
    cloud = LocalCloud(
        setup=setup,
        timeouts=timeouts,
        host=args.host,
        port=args.port,
        aws_port=args.aws_port,
        env_overrides=dict(setup.overrides),
        watch=not args.no_watch,
        template=args.template,
        parameters=parameters,
    )
    cloud.phases.mark_process_start("python and imports")
    try:
        cloud.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        print("       set ORDO_PORT to use another port", file=sys.stderr)
        cloud.stop()
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        cloud.stop()
        return 1
    print(cloud.banner(), flush=True)
    stopping.wait()
    print("\nstopping…", flush=True)
    cloud.stop()
    return 0


def parameter_overrides(arguments: list[str]) -> dict[str, str]:
    """The parameters, as SAM reads them: each argument holds entries split as a shell would
    (``"A=1 B='two words'"``), each ``KEY=VALUE`` or ``ParameterKey=KEY,ParameterValue=VALUE``.
    ``ValueError`` names a malformed one."""
    parameters: dict[str, str] = {}
    for argument in arguments:
        try:
            entries = shlex.split(argument)
        except ValueError as exc:
            raise ValueError(f"--parameter-overrides: {argument!r}: {exc}") from exc
        for entry in entries:
            sam = _SAM_ENTRY.fullmatch(entry)
            key, equals, value = (sam[1], "=", sam[2]) if sam else entry.partition("=")
            if not key or not equals:
                raise ValueError(
                    f"--parameter-overrides: {entry!r} is not KEY=VALUE "
                    "or ParameterKey=KEY,ParameterValue=VALUE"
                )
            parameters[key] = value
    return parameters


if __name__ == "__main__":
    sys.exit(main())
