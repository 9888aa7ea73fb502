"""A loopback HTTP server the agent tests control: serves a directory, lies on request.

Per URL path (relative to the served root, e.g. "metadata/timestamp.json") a test can
substitute other bytes, withhold the file (404), or append endless data; every request is
counted per path, so a test can assert what a check cost.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class TufServer:
    """The state a test steers; `url` is the base URL of the served directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.substitutes: dict[str, bytes] = {}
        self.withheld: set[str] = set()
        self.oversize: dict[str, int] = {}  # path -> extra bytes appended
        self.requests: Counter[str] = Counter()
        self.url = ""

    def reset(self) -> None:
        self.substitutes.clear()
        self.withheld.clear()
        self.oversize.clear()
        self.requests.clear()

    def body(self, path: str) -> bytes | None:
        if path in self.withheld:
            return None
        if path in self.substitutes:
            data = self.substitutes[path]
        else:
            file = (self.root / path).resolve()
            if not file.is_relative_to(self.root.resolve()) or not file.is_file():
                return None
            data = file.read_bytes()
        return data + b"x" * self.oversize.get(path, 0)


@contextmanager
def serving(root: Path) -> Iterator[TufServer]:
    """Serve root on 127.0.0.1 until the block ends."""
    state = TufServer(root)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].lstrip("/")
            state.requests[path] += 1
            data = state.body(path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
