"""A real HTTP server for tests: the FastAPI app under uvicorn, in a thread, on a free port."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, *, access_log: bool = False) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL. ``access_log`` as
    ``telemed web`` has it (uvicorn's access lines through the root logger)."""
    port = free_port()
    # uvicorn turns the access logger off process-wide when access_log is False (no
    # handlers, no propagation) and never turns it back on: a later server in the same
    # test process would log nothing. Each server here gets the logger as telemed web has it.
    access = logging.getLogger("uvicorn.access")
    saved = (access.propagate, list(access.handlers))
    access.propagate, access.handlers = True, []
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off",
                            access_log=access_log)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        access.propagate, access.handlers = saved
