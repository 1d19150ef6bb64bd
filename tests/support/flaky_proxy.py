"""A real HTTP reverse proxy that puts S3-style faults in front of an S3 server.

It listens on 127.0.0.1 (a free port), forwards every request to ``upstream`` with
``http.client`` and answers some of them itself instead:

* ``failure_rate``: that share of requests gets an S3 error (500 ``InternalError`` and 503
  ``SlowDown`` in turn, or the ``errors`` given) with S3's XML error body, so botocore's retry
  logic sees exactly what real S3 sends. The share is spread deterministically over the
  requests in arrival order (request ``n`` fails when ``ceil((n+1)*rate) > ceil(n*rate)``, in
  exact fractions: the first request fails, then one in every ``1/rate``), so N requests give
  exactly ``ceil(N*rate)`` failures, whatever the thread interleaving.
* ``fail_when``: a predicate on :class:`Request`; matching requests always fail (e.g. every
  ``UploadPart``), to exhaust the client's retries.
* ``deny_buckets``: requests for these buckets get 403 ``AccessDenied``.
* ``delay_rate`` / ``delay``: that share of forwarded requests is held ``delay`` seconds
  before being answered (a slow server).

Every request is recorded (method, path, query, status, whether the proxy answered it), so
tests can assert that faults really were injected and that clients really retried.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    403: ("AccessDenied", "Access Denied"),
}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}


@dataclass(frozen=True)
class Request:
    """One request as the proxy saw it."""

    method: str
    path: str  # without the query
    query: dict  # parse_qs of the query string, blank values kept ({"uploads": [""]})
    range: str | None = None

    @property
    def bucket(self) -> str:
        """The bucket of a path-style request (what botocore uses for an IP endpoint)."""
        return self.path.lstrip("/").split("/", 1)[0]

    @property
    def operation(self) -> str:
        """The S3 operation name, for the ones these tests care about."""
        q, m = self.query, self.method
        if "uploadId" in q:
            if m == "PUT" and "partNumber" in q:
                return "UploadPart"
            return {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload", "GET": "ListParts"}.get(m, m)
        if "uploads" in q:
            return "CreateMultipartUpload" if m == "POST" else "ListMultipartUploads"
        key = self.path.lstrip("/").partition("/")[2]
        if not key:
            return {"GET": "ListObjects", "PUT": "CreateBucket", "HEAD": "HeadBucket"}.get(m, m)
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(m, m)

    @property
    def signature(self) -> tuple:
        """Identifies a request and its retries (same operation, key, part and range)."""
        return (self.method, self.path, tuple(sorted((k, tuple(v)) for k, v in self.query.items())), self.range)


@dataclass(frozen=True)
class Record:
    request: Request
    status: int
    injected: bool  # answered by the proxy, not the upstream server
    delayed: bool


class FlakyProxy:
    """Start with ``with FlakyProxy(upstream, failure_rate=0.3) as proxy: ... proxy.url``."""

    def __init__(
        self,
        upstream: str,
        *,
        failure_rate: float = 0.0,
        errors=(500, 503),
        fail_when: Callable[[Request], bool] | None = None,
        deny_buckets=(),
        delay_rate: float = 0.0,
        delay: float = 0.0,
    ):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.failure_rate, self.errors = Fraction(str(failure_rate)), tuple(errors)
        self.fail_when, self.deny_buckets = fail_when, set(deny_buckets)
        self.delay_rate, self.delay = Fraction(str(delay_rate)), delay
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._seen = 0  # requests eligible for random faults, in arrival order
        self._failed = 0
        self._forwarded = 0
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FlakyProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="flaky-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what happened ---------------------------------------------------------------------
    @property
    def injected(self) -> Counter:
        """Status code -> number of answers the proxy made up."""
        with self._lock:
            return Counter(r.status for r in self.records if r.injected)

    @property
    def delayed(self) -> int:
        with self._lock:
            return sum(r.delayed for r in self.records)

    def attempts(self, operation: str | None = None) -> Counter:
        """Request signature -> how many times it was sent (>1 means the client retried)."""
        with self._lock:
            return Counter(
                r.request.signature for r in self.records if operation is None or r.request.operation == operation
            )

    def retries(self) -> int:
        """Requests that repeated an earlier identical one (the client's retries)."""
        return sum(n - 1 for n in self.attempts().values())

    def operations(self) -> Counter:
        with self._lock:
            return Counter(r.request.operation for r in self.records)

    # -- decisions -------------------------------------------------------------------------
    def _decide(self, request: Request) -> tuple[int | None, bool]:
        """(status to answer with instead of forwarding, or None; whether to delay)."""
        if request.bucket in self.deny_buckets:
            return 403, False
        if self.fail_when is not None and self.fail_when(request):
            return self.errors[0], False
        with self._lock:
            n = self._seen
            self._seen += 1
            if math.ceil((n + 1) * self.failure_rate) > math.ceil(n * self.failure_rate):
                status = self.errors[self._failed % len(self.errors)]
                self._failed += 1
                return status, False
            m = self._forwarded
            self._forwarded += 1
            delay = math.floor((m + 1) * self.delay_rate) > math.floor(m * self.delay_rate)
        return None, delay

    def _record(self, request: Request, status: int, injected: bool, delayed: bool) -> None:
        with self._lock:
            self.records.append(Record(request, status, injected, delayed))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for botocore's PUTs
    timeout = 30  # idle keep-alive connections
    proxy: FlakyProxy

    def do_request(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        request = Request(
            self.command, url.path, parse_qs(url.query, keep_blank_values=True), self.headers.get("Range")
        )
        status, delayed = self.proxy._decide(request)
        if status is not None:  # recorded before answering, so a test sees it once told
            self.proxy._record(request, status, True, False)
            self._send_error(status, url.path)
            return
        if delayed:
            time.sleep(self.proxy.delay)
        response, data = self._fetch(body)
        self.proxy._record(request, response.status, False, delayed)
        self._relay(response, data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_request

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length is not None else None

    def _send_error(self, status: int, resource: str) -> None:
        code, message = ERRORS[status]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{resource}</Resource><RequestId>FLAKYPROXY</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _fetch(self, body: bytes | None) -> tuple[http.client.HTTPResponse, bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*self.proxy.upstream, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()

    def _relay(self, response: http.client.HTTPResponse, data: bytes) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet, records say it all
        pass
