"""Health: a shallow answer, or a deep one that reaches every dependency and names what failed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

Probe = Callable[[], object]


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    timestamp: datetime
    checks: dict[str, str] | None = None

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


def _outcome(probe: Probe) -> str:
    try:
        probe()
    except ClientError as error:
        return f"failed: {error.response.get('Error', {}).get('Code', 'error')}"
    except BotoCoreError as error:
        return f"failed: {type(error).__name__}"
    return "ok"


def check(probes: Mapping[str, Probe], now: datetime) -> Health:
    """Run every probe; unhealthy if any fails, with each one's outcome."""
    checks = {name: _outcome(probe) for name, probe in probes.items()}
    healthy = all(outcome == "ok" for outcome in checks.values())
    return Health(status="healthy" if healthy else "unhealthy", timestamp=now, checks=checks)
