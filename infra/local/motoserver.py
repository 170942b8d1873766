"""moto's server for the local cloud: moto's own WSGI app on HTTP/1.1 connections that stay open.

``moto.server.ThreadedMotoServer`` runs werkzeug's development server, which closes the
connection after every response: each AWS call of a function paid for a new TCP connection and
a new server thread, and its response left in two writes (headers, then body). Here a
connection serves request after request, as AWS endpoints do, and each response leaves in one
write with ``TCP_NODELAY``. Requests, environ and app are werkzeug's and moto's own.

:class:`InProcess` takes a botocore client of this process off the socket: a ``before-send``
handler hands each request to the same app, in the caller's thread, as the environ werkzeug's
server would build from the same bytes, and turns the answer into the response botocore would
have read (the same status, headers and body). The local cloud's own clients (the event source
mappings above all) use it: no server thread has to wake, and no request waits for the GIL
twice more.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

App = Callable[[dict[str, Any], Callable[..., Any]], Any]

log = logging.getLogger("ordo.local.moto")

# Hop-by-hop or length headers the server decides, never the app.
_FRAMING = {"connection", "content-length", "transfer-encoding", "keep-alive"}
_ADDED = {"HTTP_HOST", "HTTP_ACCEPT_ENCODING"}  # by urllib3, unless botocore sets them


class _KeepAliveHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        # Read the whole body now, so the next request on this connection starts clean.
        if environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()
            del environ["wsgi.input_terminated"], environ["HTTP_TRANSFER_ENCODING"]
        else:
            body = self.rfile.read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            status, headers, data = _call(self.server.app, environ)
        except Exception:
            status, headers, data = _failed(environ)
            self.close_connection = True
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + data)


def _call(app: App, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request through moto's app: the status line, the headers as the server sends them
    (framing decided here, never by the app) and the body to send (none for a HEAD). Raises
    what the app raises."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        del exc_info
        answer[:] = [status, headers]
        return lambda _data: None  # moto never writes through it

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    status, headers = answer
    head = environ["REQUEST_METHOD"] == "HEAD"
    framed = [
        (name, value)
        for name, value in headers
        if name.lower() not in _FRAMING or (head and name.lower() == "content-length")
    ]
    if head:
        return status, framed, b""
    return status, [*framed, ("Content-Length", str(len(data)))], data


class MotoServer:
    """What ``ThreadedMotoServer`` offers (start, host and port, stop), with kept connections."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (ip_address, port)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._in_process: InProcess | None = None

    def start(self) -> None:
        self.app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            *self._address, self.app, threaded=True, request_handler=_KeepAliveHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("start() first")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def attach[C](self, client: C) -> C:
        """``client`` (a botocore client), served in this process if it calls this server."""
        if self._in_process is None:
            self._in_process = InProcess(self)
        return self._in_process.attach(client)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()


def _failed(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """The answer to a request moto's app failed on (logged): werkzeug's server's own."""
    log.exception("moto failed on %s %s", environ["REQUEST_METHOD"], environ["RAW_URI"])
    return _call(InternalServerError(), environ)


class _Body(io.BytesIO):
    """A response body as botocore reads it from urllib3: ``read`` and ``stream``."""

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Any:
        del decode_content
        while chunk := self.read(amt):
            yield chunk


class InProcess:
    """A botocore ``before-send`` handler that serves a client's requests to ``server`` by
    calling its app in the caller's thread.

    The environ is the one werkzeug's server builds for the request botocore would have sent
    (urllib3's ``Host`` and ``Accept-Encoding`` included), less the socket; the response is
    what the server would have written. Requests to any other endpoint go out as before.
    """

    def __init__(self, server: MotoServer) -> None:
        host, port = server.get_host_and_port()
        self._app: App = server.app
        self._netloc = f"{host}:{port}"
        self._constant = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "SERVER_SOFTWARE": f"Werkzeug/{_werkzeug_version()}",
            "SCRIPT_NAME": "",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": 0,  # no socket
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
        }

    def attach[C](self, client: C) -> C:
        """Serve ``client`` (a botocore client) in process if it calls this server; returns it."""
        meta = cast(Any, client).meta
        if urlsplit(meta.endpoint_url).netloc == self._netloc:
            meta.events.register("before-send", self)
        return client

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from urllib3 import HTTPHeaderDict

        url = urlsplit(request.url)
        if url.netloc != self._netloc:
            return None
        environ = self._environ(request, url)
        try:
            status, headers, data = _call(self._app, environ)
        except Exception:
            status, headers, data = _failed(environ)
        # urllib3's header dict, as botocore's own HTTP session hands it over
        answer = cast(Any, HTTPHeaderDict(headers))
        return AWSResponse(request.url, int(status.split(" ", 1)[0]), answer, _Body(data))

    def _environ(self, request: Any, url: Any) -> dict[str, Any]:
        body = request.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("iso-8859-1")  # as http.client sends a str body
        elif not isinstance(body, bytes | bytearray):
            body = body.read()
        target = url.path + (f"?{url.query}" if url.query else "")
        environ = self._constant | {
            "wsgi.input": io.BytesIO(body),
            "REQUEST_METHOD": request.method,
            "PATH_INFO": unquote(url.path).encode().decode("latin-1"),
            "QUERY_STRING": url.query,
            "REQUEST_URI": target,
            "RAW_URI": target,
        }
        # What urllib3 adds, then the headers as werkzeug and moto's handler put them.
        headers = {"HTTP_HOST": self._netloc, "HTTP_ACCEPT_ENCODING": "identity"}
        sent = [
            (name, value.decode("latin-1") if isinstance(value, bytes) else str(value))
            for name, value in request.headers.items()
        ]
        for name, value in sent:
            if "_" in name:
                continue
            key = environ_key_for_header(name)
            repeated = key in headers and key.startswith("HTTP_") and key not in _ADDED
            headers[key] = f"{headers[key]},{value}" if repeated else value  # werkzeug joins
        # moto's handler keeps these underscores (S3 metadata), never over a dashed header.
        dashed = {environ_key_for_header(name) for name, _ in sent if "_" not in name}
        names: dict[str, str] = {}
        values: dict[str, list[str]] = {}
        for name, value in sent:
            key = environ_key_for_header(name)
            if should_preserve_original_header_name(name) and key not in dashed:
                names.setdefault(key, name)
                values.setdefault(key, []).append(value)
        headers |= {key: ",".join(joined) for key, joined in values.items()}
        environ.update(headers)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names
        environ["CONTENT_LENGTH"] = str(len(body))  # read whole, as the server reads it
        return environ


def _werkzeug_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("werkzeug")


class InProcessReceive:
    """``ReceiveMessage`` on one queue, answered by moto's SQS backend in this process: the
    messages botocore returns for ``MessageSystemAttributeNames=["All"]`` and
    ``MessageAttributeNames=["All"]`` with no wait, the same fields and values, without the
    request and its answer serialised and parsed on both sides (about 1 ms of each pickup).

    The backend's own ``receive_message`` decides what is received, as moto's handler has it
    do: visibility, FIFO group locks, the redrive to a DLQ.
    """

    def __init__(self, queue_arn: str) -> None:
        _, _, _, self._region, self._account, self._queue_name = queue_arn.split(":", 5)

    def __call__(self, count: int) -> list[MessageTypeDef]:
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[self._account][self._region]
        queue = backend.get_queue(self._queue_name)
        visibility = queue.visibility_timeout  # type: ignore[attr-defined]  # set from attributes
        messages = backend.receive_message(self._queue_name, count, 0, visibility, ["All"])
        return [cast("MessageTypeDef", _received(message)) for message in messages]


def _received(message: Any) -> dict[str, Any]:
    """One message as moto's ReceiveMessage handler answers it, every attribute asked for."""
    received: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
    }
    if message.message_attributes:
        received["MessageAttributes"] = {
            name: dict(value) for name, value in message.message_attributes.items()
        }
        received["MD5OfMessageAttributes"] = message.attribute_md5
    attributes = {
        "SenderId": message.sender_id,
        "SentTimestamp": str(message.sent_timestamp),
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.deduplication_id is not None:
        attributes["MessageDeduplicationId"] = message.deduplication_id
    if message.group_id is not None:
        attributes["MessageGroupId"] = message.group_id
    trace = (message.system_attributes or {}).get("AWSTraceHeader")
    if trace and trace.get("StringValue"):
        attributes["AWSTraceHeader"] = trace["StringValue"]
    if message.sequence_number is not None:
        attributes["SequenceNumber"] = message.sequence_number
    received["Attributes"] = attributes
    return received
