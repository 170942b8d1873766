"""The process one local Lambda function runs in (``python -m infra.local.runtime``).

Like Lambda's runtime, it imports the handler once (the init phase) and then serves one
invocation at a time. Requests arrive on stdin and replies leave on a separate pipe, as
length-prefixed JSON frames, so the handler's own prints and logs stay on stdout.

Local only: ``ORDO_LOCAL_PRELOAD``, a comma-separated list of module names, is imported in the
init phase before the handler module (with the function's code folder, its layers and the
repository root on ``sys.path``), so tests can inject faults through real code paths: register
an extra job kind, or hook botocore events to answer ``ThrottlingException``. A module that
fails to import is an init error, as a failing handler import is. The local cloud passes the
starting shell's ``ORDO_*`` variables to every function, so ``ORDO_LOCAL_PRELOAD=tests.faults
make dev`` preloads in every function. Deployed code never reads it: nothing outside
``infra/local`` does.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import struct
import sys
import traceback
from collections.abc import Mapping
from contextlib import suppress
from typing import IO, Any

from infra.local.context import LambdaContext

_HEADER = struct.Struct(">I")
PRELOAD = "ORDO_LOCAL_PRELOAD"


def write_frame(stream: IO[bytes], message: Any) -> None:
    data = json.dumps(message, default=str).encode()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return json.loads(data)


def _openapi(module: Any) -> Any:
    app = getattr(module, "app", None)
    return app.openapi() if app is not None and hasattr(app, "openapi") else None


def serve(code_dir: str, handler: str, function_name: str, reply_fd: int) -> None:
    with os.fdopen(reply_fd, "wb") as replies:
        _serve(code_dir, handler, function_name, replies)


class PreloadError(Exception):
    """A module named in ``ORDO_LOCAL_PRELOAD`` failed to import."""


def preload_modules(environ: Mapping[str, str]) -> list[str]:
    """The module names ``ORDO_LOCAL_PRELOAD`` lists, in order."""
    return [name.strip() for name in environ.get(PRELOAD, "").split(",") if name.strip()]


def _preload(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise PreloadError(f"{PRELOAD} {name}: {type(exc).__name__}: {exc}") from exc


def _serve(code_dir: str, handler: str, function_name: str, replies: IO[bytes]) -> None:
    requests = sys.stdin.buffer
    sys.path.insert(0, code_dir)
    module_name, attribute = handler.rsplit(".", 1)
    try:
        _preload(preload_modules(os.environ))
        module = importlib.import_module(module_name)
        entry = getattr(module, attribute)
    except PreloadError as exc:
        init_error: str | None = str(exc)
        traceback.print_exc()
    except Exception as exc:  # Lambda reports init errors on every invocation
        init_error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    else:
        init_error = None
    write_frame(replies, {"ready": init_error is None, "error": init_error})
    while True:
        try:
            request = read_frame(requests)
        except EOFError:
            return
        if init_error is not None:
            write_frame(replies, {"ok": False, "error": init_error, "type": "Runtime.InitError"})
            continue
        if request.get("openapi"):
            write_frame(replies, {"ok": True, "payload": _openapi(module)})
            continue
        context = LambdaContext(
            function_name=function_name,
            timeout_seconds=float(request["timeout"]),
            memory_limit_in_mb=int(request.get("memory", 128)),
            aws_request_id=request["request_id"],
        )
        try:
            payload = entry(request["event"], context)
        except Exception as exc:
            traceback.print_exc()
            write_frame(replies, {"ok": False, "error": str(exc), "type": type(exc).__name__})
        else:
            write_frame(replies, {"ok": True, "payload": payload})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--reply-fd", type=int, required=True)
    args = parser.parse_args()
    # The local cloud stops its children itself; a closed reply pipe means it is gone.
    with suppress(KeyboardInterrupt, BrokenPipeError):
        serve(args.code_dir, args.handler, args.function_name, args.reply_fd)


if __name__ == "__main__":
    main()
