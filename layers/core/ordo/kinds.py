"""Job kinds: the contract each kind of work on the lane declares, and the registry of them.

A kind declares its payload model (what a job of that kind stores, validated when it is
accepted), its runner, its maximum run time and whether its result is JSON. The worker dispatches
only through a :class:`Registry`, and holds every runner to its kind's time budget.

The kinds this deployment runs are registered in :mod:`ordo.registry`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter

from ordo.clock import Clock, Sleeper, utcnow

# The least real time any run gets, however small ORDO_TIME_SCALE: the I/O a runner does (its
# progress reports, say) does not scale.
MIN_RUN_SECONDS = 1.0

Reporter = Callable[[int], None]


class JobFailed(Exception):
    """Raised by a runner when the job's own input can never succeed; the message is shown."""


class Cancelled(BaseException):
    """The worker stopped this runner (it overran its time budget).

    A ``BaseException``, so that a runner's ``except Exception`` cannot swallow it.
    """


def _admit_all(_payload: Any) -> None:
    return None


@dataclass(frozen=True)
class Kind[P: BaseModel]:
    """One kind of job.

    ``max_seconds`` is the most the runner may take, in simulated seconds (multiplied by
    ``ORDO_TIME_SCALE``) unless ``simulated`` is false, for kinds whose work is real I/O.
    ``run`` returns the text stored as the job's result. ``result_is_json`` says that text is
    always JSON: clients see it parsed, and it is stored as the JSON value it holds. Any other
    result is text, shown and stored as it is, even when it happens to look like JSON.
    ``admit`` makes checks beyond the payload model that answer with an error of their own
    (``PayloadTooLarge``, say) when a job is submitted.
    """

    name: str
    payload: type[P]
    run: Callable[[P, RunContext], str]
    max_seconds: float
    result_is_json: bool = False
    admit: Callable[[P], None] = _admit_all
    simulated: bool = True
    description: str = ""

    def budget(self, time_scale: float, floor: float = MIN_RUN_SECONDS) -> float:
        """Seconds the worker lets one run take before it stops it: the kind's maximum run time
        at this time scale, and never less than ``floor``."""
        factor = time_scale if self.simulated else 1.0
        return max(self.max_seconds * factor, floor)

    def parse(self, data: str) -> P:
        return self.payload.model_validate_json(data)

    def show(self, result: str) -> Any:
        """The result as clients see it."""
        return json.loads(result) if self.result_is_json else result


class UnknownKind(LookupError):
    pass


class Registry:
    """Job kinds by name. The worker, the views and the generic submit route look kinds up here."""

    def __init__(self, *kinds: Kind[Any]) -> None:
        self._kinds: dict[str, Kind[Any]] = {}
        self._request: TypeAdapter[Any] | None = None
        for kind in kinds:
            self.register(kind)

    def register(self, kind: Kind[Any]) -> Kind[Any]:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is already registered")
        declared = kind.payload.model_fields.get("kind")
        if declared is None or declared.default != kind.name:
            raise ValueError(
                f"{kind.payload.__name__} must declare `kind: Literal[{kind.name!r}]` "
                f"with that default"
            )
        if kind.max_seconds <= 0:
            raise ValueError(f"job kind {kind.name!r} needs a positive max_seconds")
        self._kinds[kind.name] = kind
        self._request = None
        return kind

    def get(self, name: str) -> Kind[Any]:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(name) from None

    def find(self, name: str) -> Kind[Any] | None:
        return self._kinds.get(name)

    def __iter__(self) -> Iterator[Kind[Any]]:
        return iter(self._kinds.values())

    def names(self) -> list[str]:
        return list(self._kinds)

    def longest_budget(self, time_scale: float) -> float:
        return max(kind.budget(time_scale) for kind in self)

    def request_type(self) -> Any:
        """Every kind's payload model in one discriminated union, keyed by ``kind``: the body of
        ``POST /jobs``."""
        models = tuple(kind.payload for kind in self)
        if len(models) == 1:
            return models[0]
        # Built from the registry at run time, so it cannot be written as X | Y.
        return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007

    def request_adapter(self) -> TypeAdapter[Any]:
        if self._request is None:
            self._request = TypeAdapter(self.request_type())
        return self._request


class Resources:
    """Shared things a runner may need (an HTTP source, a store), by type, built on first use.

    The composition root (``ordo.wiring``) provides them; a kind asks with ``ctx.need(Type)``.
    """

    def __init__(self, providers: dict[type[Any], Callable[[], Any]] | None = None) -> None:
        self._providers = dict(providers or {})

    def get[T](self, resource: type[T]) -> T:
        provider = self._providers.get(resource)
        if provider is None:
            raise JobFailed(f"{resource.__name__} is not configured in this worker")
        value = provider()
        if not isinstance(value, resource):
            raise TypeError(f"the provider of {resource.__name__} gave a {type(value).__name__}")
        return value


@dataclass
class RunContext:
    """What a runner gets besides its payload: the simulated clock, progress reports, the
    resources the worker was given."""

    job_id: str
    time_scale: float
    report_progress: Reporter = lambda _progress: None
    resources: Resources = field(default_factory=Resources)
    clock: Clock = utcnow
    sleeper: Sleeper | None = None  # tests replace the wait; None waits on ``cancelled``
    cancelled: threading.Event = field(default_factory=threading.Event)

    def sleep(self, simulated_seconds: float) -> None:
        """Wait a simulated duration (times ``ORDO_TIME_SCALE``); stops at once if cancelled."""
        self._check()
        seconds = simulated_seconds * self.time_scale
        if seconds > 0:
            if self.sleeper is not None:
                self.sleeper(seconds)
            else:
                self.cancelled.wait(seconds)
        self._check()

    def report(self, progress: int) -> None:
        self._check()
        self.report_progress(progress)

    def now(self) -> datetime:
        return self.clock()

    def need[T](self, resource: type[T]) -> T:
        return self.resources.get(resource)

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled
