"""HTTP to the ordo API: tokens (refreshed when they expire) and one error type for the CLI."""

from __future__ import annotations

from typing import Any

import httpx

from ordo_cli import credentials


class CliError(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


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
        credentials.save(
            self.url, {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"]}
        )

    def logout(self) -> bool:
        signed_in = credentials.load(self.url) is not None
        credentials.save(self.url, None)
        return signed_in

    def _refresh(self) -> bool:
        tokens = credentials.load(self.url)
        if not tokens:
            return False
        response = self._send(
            "POST", "/auth/refresh", False, json={"refresh_token": tokens["refresh_token"]}
        )
        if not response.is_success:
            credentials.save(self.url, None)
            raise CliError("your session has expired; run `ordo login` again")
        pair = response.json()
        credentials.save(
            self.url, {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"]}
        )
        return True
