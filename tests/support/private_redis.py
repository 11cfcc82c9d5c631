"""A Redis of a test's own, for tests that FLUSHALL or kill it (never the shared one).

``real``: a ``redis-server`` process on a free port (no persistence, like a cache that
lost everything); otherwise the embedded Redis-protocol server.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from telemed.workers.queue.embedded_redis import EmbeddedRedisServer, answers
from tests.support.webserver import free_port


@contextmanager
def private_redis(real: bool) -> Iterator[str]:
    if not real:
        server = EmbeddedRedisServer.start(port=free_port())
        try:
            yield server.url
        finally:
            server.stop()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is needed for this test on the real backend")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
