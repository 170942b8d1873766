"""Functions run in this process: an ``Invoker`` whose invocation is a call of the handler.

The local cloud runs each function in processes of its own (``functions.FunctionHost``). This
runs them in the caller's interpreter, with the caller's environment, so a test can reach into
a handler's module (swap a runner, hook a client) and read an error's traceback in its log. It
keeps the rules of the process pool that need no process of their own:

* the handler module is imported once per function, as a cold start imports it;
* each call gets a real Lambda context, with the function's timeout and memory;
* past ``ReservedConcurrentExecutions`` calls at once, one more is THROTTLED;
* a handler that raises is an ERROR, and one that ends the call as a killed process would (a
  ``BaseException`` that is not an ``Exception``) is an ERROR too, ``Runtime.ExitError``;
* a call that outlived its timeout is a TIMEOUT. Nothing can kill a call in this process, so
  its effects stay; only its answer is lost, as Lambda loses it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from infra.local.context import LambdaContext
from infra.local.invoke import Invocation, Outcome
from infra.local.stack import Function

log = logging.getLogger("ordo.local.inprocess")


def load_handler_module(function: Function) -> ModuleType:
    """Import a function's handler module as a cold start would, under a name of its own, with
    its layers on ``sys.path``."""
    for layer in function.layers:
        if str(layer) not in sys.path:
            sys.path.append(str(layer))
    module_file, _ = function.handler.rsplit(".", 1)
    name = f"ordo_function_{function.logical_id}_{id(function)}"
    spec = importlib.util.spec_from_file_location(name, function.code_uri / f"{module_file}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"{function.logical_id}: no handler module {module_file}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class InProcessFunctions:
    """Every function of the stack, by logical id, run in this process."""

    def __init__(self, functions: Mapping[str, Function]) -> None:
        self.functions = dict(functions)
        self._modules: dict[str, ModuleType] = {}
        self._slots = {
            lid: threading.BoundedSemaphore(max(fn.reserved_concurrency, 1))
            for lid, fn in self.functions.items()
            if fn.reserved_concurrency is not None
        }

    def module(self, logical_id: str) -> ModuleType:
        """The function's handler module, imported on first use (its cold start)."""
        if logical_id not in self._modules:
            self._modules[logical_id] = load_handler_module(self.functions[logical_id])
        return self._modules[logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        slots = self._slots.get(logical_id)
        if slots is not None and not slots.acquire(blocking=False):
            return Invocation(Outcome.THROTTLED, error="Rate Exceeded.")
        try:
            return self._invoke(self.functions[logical_id], event)
        finally:
            if slots is not None:
                slots.release()

    def _invoke(self, function: Function, event: dict[str, Any]) -> Invocation:
        handler = getattr(self.module(function.logical_id), function.handler.rsplit(".", 1)[1])
        _ensure_event_loop()
        context = LambdaContext(function.logical_id, function.timeout, function.memory)
        started = time.monotonic()
        try:
            payload = handler(event, context)
        except Exception as exc:
            log.exception("%s: the handler raised", function.logical_id)
            return Invocation(Outcome.ERROR, error=_describe(exc), duration_ms=_since(started))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # what a killed process would have been
            log.exception("%s: the invocation ended abruptly", function.logical_id)
            error = f"Runtime.ExitError: {_describe(exc)}"
            return Invocation(Outcome.ERROR, error=error, duration_ms=_since(started))
        elapsed = _since(started)
        if elapsed > function.timeout * 1000:
            error = f"Task timed out after {function.timeout:.2f} seconds"
            log.warning("%s: %s", function.logical_id, error)
            return Invocation(Outcome.TIMEOUT, error=error, duration_ms=elapsed)
        return Invocation(Outcome.OK, payload=payload, duration_ms=elapsed)


_loop_ready = threading.local()


def _ensure_event_loop() -> None:
    """Mangum asks asyncio for the thread's event loop; only the main thread gets one made.
    Once per thread: ``catch_warnings`` swaps the process's warning filters."""
    if getattr(_loop_ready, "done", False):
        return
    _loop_ready.done = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # made in the main thread, as asked
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())


def _describe(error: BaseException) -> str:
    """``Type: message``, even for an error whose ``str()`` raises."""
    return "".join(traceback.format_exception_only(error)).strip()


def _since(started: float) -> float:
    return (time.monotonic() - started) * 1000
