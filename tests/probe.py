"""Runs a ``python -c`` probe in a fresh interpreter and reads back what it printed.

A probe prints one JSON document as its last line of output; anything it prints before that
(warnings, logs) is ignored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def run_probe(
    code: str,
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Any:
    """Run ``code`` with ``args`` in a new interpreter; assert it succeeded; parse its last line.

    ``env`` replaces the environment whole (None inherits this process's).
    """
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])
