"""Tokens on disk: ``$XDG_CONFIG_HOME/ordo/credentials.json`` (``~/.config/ordo/``), one entry
per API URL. The directory is kept at mode 0700 and the file at 0600.

A write goes to a new temporary file beside the target, created with ``O_EXCL|O_NOFOLLOW`` at
mode 0600 (so it is never someone else's file or a symlink planted there), then renamed over
the target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


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


def private_directory(directory: Path) -> None:
    """Make ``directory`` (and its parents), or correct its mode, to 0700; ``OSError`` if it is
    not a directory or cannot be made private (someone else's, say)."""
    directory.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{directory} is not a directory")
    if stat.S_IMODE(info.st_mode) != PRIVATE_DIRECTORY:
        os.chmod(directory, PRIVATE_DIRECTORY)


def save(api_url: str, tokens: dict[str, str] | None) -> None:
    """Write (or, with ``None``, forget) the tokens for ``api_url``; ``OSError`` if it cannot."""
    data = _all()
    if tokens is None:
        if api_url not in data:
            return
        data.pop(api_url)
    else:
        data[api_url] = tokens
    target = path()
    private_directory(target.parent)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(temporary, flags, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w") as file:
            os.fchmod(file.fileno(), PRIVATE_FILE)  # whatever the umask
            json.dump(data, file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
