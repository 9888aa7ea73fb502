"""Loopback HTTP servers that stand in for Jira and GitHub in the trackers' tests.

`FakeServer` is the shared part: a ThreadingHTTPServer on 127.0.0.1:0 in a thread, a
record of every request as it arrived, routes that subclasses declare, and faults a test
queues for the next requests (an HTTP status, or a stall *after* the request was handled,
which is how a POST that succeeded but whose answer never came looks to the client).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as it reached the server."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Any  # the JSON body, or None
    headers: Mapping[str, str]

    @property
    def auth(self) -> str:
        return self.header("Authorization")

    def header(self, name: str) -> str:
        """A header's value, whatever case the client wrote its name in."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    def arg(self, name: str) -> str:
        return self.query.get(name, [""])[0]


@dataclass
class Fault:
    """What the next matching request gets instead of (or after) its answer."""

    status: int = 0  # answer this status without handling the request (0: handle it)
    stall: float = 0.0  # handle the request, then wait this long before answering
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    when: str = ""  # a regex on "METHOD /path"; empty: any request
    times: int = 1
    # handle the request, then answer only once `times` matching requests have all been
    # handled (two clients racing, made to interleave the same way on every run)
    gate: threading.Barrier | None = None


Answer = tuple[int, Any, Mapping[str, str]]  # status, JSON body (None: empty), headers
Route = tuple[str, re.Pattern[str], Callable[..., Answer]]


class FakeServer:
    """Subclasses set `routes` (method, path regex, handler(request, *groups))."""

    routes: list[Route]

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self.port = 0  # 0: any free port; set before entering to come up on a known one

    # -- faults ---------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, when: str = "",
             headers: Mapping[str, str] | None = None, body: Any = None) -> None:
        """The next `times` requests matching `when` answer `status`."""
        self.faults.append(Fault(status=status, times=times, when=when,
                                 headers=dict(headers or {}), body=body))

    def stall(self, seconds: float, *, times: int = 1, when: str = "") -> None:
        """The next matching requests are handled, then answered only after `seconds`."""
        self.faults.append(Fault(stall=seconds, times=times, when=when))

    def gate(self, parties: int, *, when: str = "", seconds: float = 20.0) -> None:
        """The next `parties` matching requests are handled, and each answered only once
        all of them have been handled (or after `seconds`, to fail rather than hang)."""
        self.faults.append(Fault(times=parties, when=when,
                                 gate=threading.Barrier(parties, timeout=seconds)))

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not fault.when or re.search(fault.when, f"{method} {path}"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def calls(self, method: str = "", path: str = "") -> list[Request]:
        """The recorded requests with this method and a path matching the regex."""
        return [r for r in self.requests if (not method or r.method == method)
                and (not path or re.fullmatch(path, r.path))]

    # -- serving --------------------------------------------------------------------

    def auth_ok(self, request: Request) -> bool:
        return True

    def dispatch(self, request: Request) -> Answer:
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                if not self.auth_ok(request):
                    return 401, {"message": "Bad credentials"}, {}
                with self.lock:
                    return handler(request, *match.groups())
        return 404, {"message": f"no route for {request.method} {request.path}"}, {}

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  json.loads(raw) if raw.strip() else None,
                                  dict(self.headers.items()))
                with server.lock:
                    server.requests.append(request)
                fault = server._fault(request.method, request.path)
                if fault and fault.status:
                    status, body, headers = fault.status, fault.body, fault.headers
                else:
                    status, body, headers = server.dispatch(request)
                if fault and fault.stall:
                    time.sleep(fault.stall)
                if fault and fault.gate:
                    try:
                        fault.gate.wait()
                    except threading.BrokenBarrierError:
                        pass  # the others never came: answer, and let the test say so
                data = b"" if body is None else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if data:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting (a stall): as a real server sees it

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        # A short poll: shutdown() waits up to one poll interval, in every test.
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()
