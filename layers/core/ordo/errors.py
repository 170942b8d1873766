"""Typed domain errors. ``ordo.http`` maps each class to an HTTP status in one place."""

from __future__ import annotations

from typing import Any


class OrdoError(Exception):
    """A client-visible error: ``detail`` is safe to show, ``extra`` joins the body."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(OrdoError):
    """The thing does not exist, or the caller may not know that it does."""


class TaskNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Task not found")


class JobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Job not found")


class Conflict(OrdoError):
    """The request is valid but the thing's current state does not allow it."""


class ResultNotReady(Conflict):
    """The task has not completed (yet, or ever)."""


class InvalidInput(OrdoError):
    """Input that passed the schema but breaks a domain rule."""


class PayloadTooLarge(OrdoError):
    """The input is well formed but over a documented size limit."""


class UpstreamFailed(OrdoError):
    """An external service ordo depends on gave no usable answer."""


class Unavailable(OrdoError):
    """A dependency (table, queue) could not be reached; the request may be retried."""


class StaleTransition(Exception):
    """A conditional state transition lost: the job is no longer in the state it was read in.

    Internal to the worker and storage; never shown to a client.
    """


class Unauthorized(OrdoError):
    """No valid credentials. Answered with ``WWW-Authenticate: Bearer``."""


class Forbidden(OrdoError):
    """Authenticated, but the role does not allow this."""


class TooManyRequests(OrdoError):
    """A quota or a rate limit; ``retry_after`` (seconds) becomes the Retry-After header."""

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
