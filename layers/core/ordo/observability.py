"""Logging and metrics: Powertools' structured Logger and EMF Metrics, shared by every function.

Powertools reads its own variables, which the template's Globals set: the service
(``POWERTOOLS_SERVICE_NAME``) of both, the log level (``POWERTOOLS_LOG_LEVEL``) and the metrics'
namespace (``POWERTOOLS_METRICS_NAMESPACE``). Nothing here names them again.

Every function's handler is :func:`observed` (an API function's through
``ordo.http.lambda_handler``): the invocation's context in each log line, and the metrics it
added flushed once, at its end. An invocation that added none prints nothing.

Both are built on first use, not at import: importing this module (or ``ordo.http``, or
``ordo.worker``) reads no environment, so the local cloud's fork server imports them once for
every function (``infra.local.zygote``). Each function still builds them in its init, from its own
environment: ``api_app`` calls :func:`ready`, and :func:`observed` uses them.
"""

from __future__ import annotations

import threading
import warnings
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


logger = cast("Logger", _BuiltOnFirstUse(Logger))
metrics = cast("Metrics", _BuiltOnFirstUse(Metrics))

# Powertools warns (to stderr, unstructured) at the end of every invocation that added no metric,
# such as a read or a refused request: for ordo that is normal, and publishes nothing.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def observed[**P, R](handler: Callable[P, R]) -> Callable[P, R]:
    """``handler`` with Powertools' Lambda context in every log line (the keys a previous
    invocation appended cleared) and its metrics flushed at its end, even when it raises."""
    decorated = logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(handler))
    return cast("Callable[P, R]", decorated)


def ready() -> None:
    """Build the logger and the metrics now, from the environment (a function's init)."""
    cast("_BuiltOnFirstUse", logger)._target()
    cast("_BuiltOnFirstUse", metrics)._target()


__all__ = ["MetricUnit", "logger", "metrics", "observed", "ready"]
