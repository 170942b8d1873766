"""Logging and metrics: Powertools' structured Logger and EMF Metrics, shared by every function.

Service name and log level come from Powertools' own variables (``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_LOG_LEVEL``), which the template sets.

Both are built on first use, not at import: importing this module (or ``ordo.http``, or
``ordo.worker``) reads no environment, so the local cloud's fork server imports them once for
every function (``infra.local.zygote``). Each function still builds them in its init, from its own
environment: ``api_app`` calls :func:`ready`, and the other handlers' decorators use them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit


class _BuiltOnFirstUse:
    """Stands in for the object ``build`` returns, built on the first attribute access."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._built: Any = None
        self._lock = threading.Lock()

    def _target(self) -> Any:
        built = self._built
        if built is None:
            with self._lock:
                built = self._built
                if built is None:
                    built = self._build()
                    self._built = built
        return built

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return repr(self._target())


logger = cast("Logger", _BuiltOnFirstUse(lambda: Logger(service="ordo")))
metrics = cast("Metrics", _BuiltOnFirstUse(lambda: Metrics(namespace="ordo", service="ordo")))


def ready() -> None:
    """Build the logger and the metrics now, from the environment (a function's init)."""
    cast("_BuiltOnFirstUse", logger)._target()
    cast("_BuiltOnFirstUse", metrics)._target()


__all__ = ["MetricUnit", "logger", "metrics", "ready"]
