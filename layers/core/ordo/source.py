"""The external API, over the standard library's ``http.client``.

Not httpx or requests: ``http.client`` is already loaded by botocore, so it adds nothing to a
cold start, and one GET needs no more. Timeouts, connection errors and 5xx are retried with
exponential backoff and full jitter, a bounded number of times; 4xx is not.

The source is untrusted, so every limit holds whatever it sends: a total ``deadline`` for the
whole fetch (every attempt, backoff and a body that trickles in), a size cap on the body (read
in chunks), a cap on the number of items, and JSON nested too deeply to parse is refused.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ordo.aggregation import SourceFailed
from ordo.observability import logger

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
    deadline: float = 12.0  # seconds for the whole fetch
    max_items: int = 1000
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def fetch(self) -> list[Any]:
        ends = self.monotonic() + self.deadline
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            try:
                return self._parse(self._get(ends))
            except _Retryable as exc:
                problem = str(exc)
                logger.warning(
                    "source attempt failed", attempt=attempt, attempts=self.attempts, error=problem
                )
            pause = random.uniform(0, self.backoff * 2 ** (attempt - 1))
            if attempt < self.attempts and self.monotonic() + pause < ends:
                self.sleep(pause)
            elif attempt < self.attempts:
                raise SourceFailed(
                    f"the source did not answer within {self.deadline:g} s; last: {problem}"
                )
        raise SourceFailed(f"the source failed {self.attempts} times; last: {problem}")

    def _left(self, ends: float) -> float:
        left = ends - self.monotonic()
        if left <= 0:
            raise SourceFailed(f"the source did not answer within {self.deadline:g} s")
        return left

    def _get(self, ends: float) -> bytes:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceFailed(f"the source URL must be http(s), not {self.url!r}")
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connect_timeout = min(self.connect_timeout, self._left(ends))
        connection = kind(parts.hostname, parts.port, timeout=connect_timeout)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        try:
            connection.connect()
            # Kept: http.client lets go of the socket once a response will close the connection.
            sock = connection.sock
            sock.settimeout(min(self.read_timeout, self._left(ends)))
            connection.request("GET", path, headers={"Accept": "application/json"})
            response = connection.getresponse()
            if response.status >= 500:
                raise _Retryable(f"the source answered {response.status}")
            if response.status != 200:
                raise SourceFailed(f"the source answered {response.status}; not retried")
            return self._read(response, sock, ends)
        except TimeoutError as exc:
            raise _Retryable("the source timed out") from exc
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"could not reach the source ({type(exc).__name__})") from exc
        finally:
            connection.close()

    def _read(self, response: http.client.HTTPResponse, sock: socket.socket, ends: float) -> bytes:
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise SourceFailed(f"the source's answer is over {self.max_bytes} bytes")
        body = bytearray()
        while True:
            sock.settimeout(min(self.read_timeout, self._left(ends)))  # each wait: what is left
            chunk = response.read1(CHUNK)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_bytes:
                raise SourceFailed(f"the source's answer is over {self.max_bytes} bytes")

    def _parse(self, body: bytes) -> list[Any]:
        try:
            items = json.loads(body)
        except RecursionError as exc:
            raise SourceFailed("the source's answer is nested too deeply to read") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceFailed("the source's answer is not valid JSON") from exc
        if not isinstance(items, list):
            raise SourceFailed(f"the source's answer is a JSON {type(items).__name__}, not a list")
        if len(items) > self.max_items:
            raise SourceFailed(f"the source sent {len(items)} items; at most {self.max_items}")
        return items
