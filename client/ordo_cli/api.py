"""HTTP to the ordo API: tokens (refreshed when they expire) and one error type for the CLI.

The stored tokens are forgotten only when the server says they are no good (401), never on a
5xx, a 429 or a network error: those pass, and the session with them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ordo_cli import credentials


class CliError(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: traffic that never leaves this machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, insecure: bool = False) -> None:
    """``CliError`` (exit 2) unless ``url`` is https, or http to loopback, or ``insecure``:
    plain http elsewhere would carry the password and the tokens in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"the API URL must look like https://HOST, not {url!r}", 2)
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise CliError(
            f"refusing plain http:// to {parts.hostname}: your password and tokens would cross "
            "the network unencrypted. Use https://, or pass --insecure to accept that",
            2,
        )


@dataclass(frozen=True)
class Logout:
    """``signed_in``: there were tokens here (now forgotten). ``problem``: why the server could
    not be told to revoke the session, or None if it was told (or had nothing to revoke)."""

    signed_in: bool
    problem: str | None = None


# /auth/logout failures that still leave nothing to revoke on the server (beyond its 204): no
# valid token to revoke (401), or a server without the route (404).
SERVER_DONE = (401, 404)


class Api:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    # --- requests ------------------------------------------------------------------------

    def call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        """The response's JSON; ``CliError`` for anything but 2xx, after one token refresh."""
        response = self._send(method, path, auth, **kwargs)
        if response.status_code == 401 and auth and self._refresh():
            response = self._send(method, path, auth, **kwargs)
        return self._json(response)

    def _send(self, method: str, path: str, auth: bool, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        tokens = credentials.load(self.url) if auth else None
        if tokens:
            headers["authorization"] = f"Bearer {tokens['access_token']}"
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise CliError(f"the ordo API at {self.url} did not answer in time", 2) from exc
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the ordo API at {self.url}; is it running? "
                "Start one with `ordo local`, or pass --api-url",
                2,
            ) from exc

    def _json(self, response: httpx.Response) -> Any:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.is_success:
            return body
        detail = body.get("detail") if isinstance(body, dict) else None
        if response.status_code >= 500:
            message = body.get("message") if isinstance(body, dict) else None
            reason = detail or message or response.text[:200]
            raise CliError(f"the server failed ({response.status_code}): {reason}")
        if response.status_code == 401 and detail == "Not authenticated":
            raise CliError("not signed in; run `ordo login`")
        raise CliError(str(detail or (body or {}).get("message") or f"HTTP {response.status_code}"))

    # --- tokens --------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        pair = self._json(
            self._send(
                "POST", "/auth/login", False, data={"username": username, "password": password}
            )
        )
        self._store(pair)

    def logout(self) -> Logout:
        """Revoke the session on the server (``POST /auth/logout``), then forget the tokens
        here, whatever the server answered, even on ctrl+c."""
        tokens = credentials.load(self.url)
        if tokens is None:
            return Logout(signed_in=False)
        try:
            response = self._send(
                "POST", "/auth/logout", True, json={"refresh_token": tokens.get("refresh_token")}
            )
            if not response.is_success and response.status_code not in SERVER_DONE:
                self._json(response)  # raises, with the server's detail
        except CliError as not_told:
            return Logout(signed_in=True, problem=not_told.message)
        else:
            return Logout(signed_in=True)
        finally:
            self._forget()

    def _refresh(self) -> bool:
        tokens = credentials.load(self.url)
        if not tokens:
            return False
        response = self._send(
            "POST", "/auth/refresh", False, json={"refresh_token": tokens["refresh_token"]}
        )
        if response.status_code == 401:  # spent, revoked or expired: these tokens are done
            self._forget()
            raise CliError("your session has expired; run `ordo login` again")
        pair = self._json(response)  # a 5xx or a 429 raises here, and the tokens stay
        self._store(pair)
        return True

    def _store(self, pair: dict[str, Any]) -> None:
        tokens = {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"]}
        try:
            credentials.save(self.url, tokens)
        except OSError as exc:
            raise CliError(f"cannot store the tokens in {credentials.path()}: {exc}") from exc

    def _forget(self) -> None:
        try:
            credentials.save(self.url, None)
        except OSError as exc:
            raise CliError(f"cannot forget the tokens in {credentials.path()}: {exc}") from exc
