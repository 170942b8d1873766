"""The external API, over the standard library's ``http.client``.

Not httpx or requests: ``http.client`` is already loaded by botocore, so it adds nothing to a
cold start, and one GET needs no more. Timeouts, connection errors and 5xx are retried with
exponential backoff and full jitter, a bounded number of times; 4xx is not. The body is read in
chunks and refused past a size cap, so a huge answer cannot exhaust the function's memory.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ordo.aggregation import SourceFailed

log = logging.getLogger("ordo.source")

CHUNK = 64 * 1024


class _Retryable(Exception):
    pass


@dataclass(frozen=True)
class HttpSource:
    url: str
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_bytes: int = 5 * 1024 * 1024
    attempts: int = 3
    backoff: float = 0.25
    sleep: Callable[[float], None] = time.sleep

    def fetch(self) -> list[Any]:
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            try:
                return self._parse(self._get())
            except _Retryable as exc:
                problem = str(exc)
                log.warning("source attempt %d of %d failed: %s", attempt, self.attempts, problem)
            if attempt < self.attempts:
                self.sleep(random.uniform(0, self.backoff * 2 ** (attempt - 1)))
        raise SourceFailed(f"the source failed {self.attempts} times; last: {problem}")

    def _get(self) -> bytes:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceFailed(f"the source URL must be http(s), not {self.url!r}")
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(parts.hostname, parts.port, timeout=self.connect_timeout)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self.read_timeout)
            connection.request("GET", path, headers={"Accept": "application/json"})
            response = connection.getresponse()
            if response.status >= 500:
                raise _Retryable(f"the source answered {response.status}")
            if response.status != 200:
                raise SourceFailed(f"the source answered {response.status}; not retried")
            return self._read(response)
        except TimeoutError as exc:
            raise _Retryable("the source timed out") from exc
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"could not reach the source ({type(exc).__name__})") from exc
        finally:
            connection.close()

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise SourceFailed(f"the source's answer is over {self.max_bytes} bytes")
        body = bytearray()
        while chunk := response.read(CHUNK):
            body += chunk
            if len(body) > self.max_bytes:
                raise SourceFailed(f"the source's answer is over {self.max_bytes} bytes")
        return bytes(body)

    @staticmethod
    def _parse(body: bytes) -> list[Any]:
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceFailed("the source's answer is not valid JSON") from exc
        if not isinstance(items, list):
            raise SourceFailed(f"the source's answer is a JSON {type(items).__name__}, not a list")
        return items
