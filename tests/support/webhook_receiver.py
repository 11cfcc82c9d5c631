"""A webhook receiver for tests: a real HTTP server on a free loopback port, in a thread,
answering each POST with a scripted status and recording what it got."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedHook:
    headers: dict[str, str]
    body: bytes
    status: int  # what we answered


@dataclass
class WebhookReceiver:
    """Answers each POST with the next scripted status (then ``default``), recording all."""

    url: str = ""
    default: int = 204
    script: list[int] = field(default_factory=list)
    received: list[ReceivedHook] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def answer_next(self, *statuses: int) -> None:
        with self._lock:
            self.script.extend(statuses)

    def _next_status(self) -> int:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _record(self, hook: ReceivedHook) -> None:
        with self._lock:
            self.received.append(hook)
            self._lock.notify_all()

    def delivered(self) -> list[ReceivedHook]:
        with self._lock:
            return [h for h in self.received if 200 <= h.status < 300]

    def wait_for(self, count: int, timeout: float = 30, delivered: bool = True) -> list[ReceivedHook]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [h for h in self.received if not delivered or 200 <= h.status < 300]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhook call(s) within {timeout} s, got {len(got)}")
                self._lock.wait(left)


@contextmanager
def webhook_receiver(default: int = 204) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(default=default)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status = receiver._next_status()
            receiver._record(ReceivedHook({k: v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/telemed/hooks"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
