"""Tokens on disk: ``$XDG_CONFIG_HOME/ordo/credentials.json`` (``~/.config/ordo/``), mode 0600,
one entry per API URL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ordo" / "credentials.json"


def _all() -> dict[str, Any]:
    try:
        data = json.loads(path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(api_url: str) -> dict[str, str] | None:
    entry = _all().get(api_url)
    return entry if isinstance(entry, dict) else None


def save(api_url: str, tokens: dict[str, str] | None) -> None:
    """Write (or, with ``None``, forget) the tokens for ``api_url``; the file is only ever 0600."""
    data = _all()
    if tokens is None:
        data.pop(api_url, None)
    else:
        data[api_url] = tokens
    target = path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file, indent=2)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
