"""Bad input at the gateway gets API Gateway's answer, and never takes the stack down."""

import socket
import ssl
from urllib.parse import urlparse

import httpx
import pytest

from tests.e2e.conftest import Api


def raw_request(api: Api, request: bytes) -> bytes:
    """``request`` as sent, byte for byte (over TLS for an https:// stack); the whole answer."""
    address = urlparse(api.url)
    assert address.hostname is not None
    secure = address.scheme == "https"
    port = address.port or (443 if secure else 80)
    with socket.create_connection((address.hostname, port), timeout=10) as plain:
        conn = (
            ssl.create_default_context().wrap_socket(plain, server_hostname=address.hostname)
            if secure
            else plain
        )
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_unknown_route_is_404_not_found(client: httpx.Client) -> None:
    response = client.get("/no/such/route")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "BREW", "PROPFIND"])
def test_unknown_method_is_404(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/tasks")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_body_over_10_mb_is_413(client: httpx.Client) -> None:
    response = client.post(
        "/tasks", content=b"x" * (10 * 1024 * 1024 + 1), headers={"content-type": "text/plain"}
    )
    assert (response.status_code, response.json()) == (413, {"message": "Request Entity Too Large"})


def test_invalid_utf8_body_reaches_the_function_base64_and_is_rejected(
    client: httpx.Client,
) -> None:
    response = client.post(
        "/tasks",
        content=b'{"type":"reverse","data":"\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    # Text that is not UTF-8 is refused before FastAPI parses it (ordo.validation): a 422.
    assert response.status_code == 422
    assert "not UTF-8" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    ["/tasks/../../etc/passwd", "/tasks/..%2F..%2Fetc%2Fpasswd", "/tasks/%ff%fe", "/../tasks"],
)
def test_path_traversal_and_bad_escapes_are_404(api: Api, path: str) -> None:
    _, token = api.sign_up()
    host = urlparse(api.url).netloc
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
    answer = raw_request(api, f"{head}Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 404")


def test_garbage_request_line_does_not_crash_the_gateway(api: Api, client: httpx.Client) -> None:
    raw_request(api, b"\x00\x01\x02 garbage\r\n\r\n")
    raw_request(api, b"GET /tasks HTTP/1.1\r\nContent-Length: -5\r\nConnection: close\r\n\r\n")
    health = client.get("/health")  # through the gateway to a function: both still serve
    assert (health.status_code, health.json()["status"]) == (200, "healthy")


@pytest.mark.local_only(
    reason="the local cloud serves /docs and the merged /openapi.json itself; "
    "API Gateway routes neither"
)
def test_docs_and_openapi_are_served(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert {"/tasks", "/tasks/{task_id}", "/tasks/{task_id}/result"} <= set(document["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
