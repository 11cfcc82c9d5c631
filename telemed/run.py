"""``telemed run``: web, worker and scheduler together, for a clinic on one machine.

The parent process applies the migrations, starts the embedded Redis-protocol server when
TELEMED_REDIS_URL is unset (it lives as long as this process), then runs the three parts
as child processes, exactly as the Procfile would, and stops them all together: on
SIGTERM/SIGINT, or when one of them dies.

The embedded server keeps nothing on disk, so a restart starts with an empty queue. That
loses nothing: every accepted event, owed sync and owed notice is in the store, and the
scheduler's reconciler queues it again on its first passes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

import structlog

from telemed.bootstrap import redis_url
from telemed.settings import Settings
from telemed.store.migrate import upgrade

log = structlog.get_logger("telemed.run")
STOP_TIMEOUT_S = 30


WORKER_NICENESS = 10


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def child_commands(host: str, port: int, processes: int, threads: int) -> dict[str, list[str]]:
    telemed = [sys.executable, "-m", "telemed"]
    return {
        "web": [*telemed, "web", "--host", host, "--port", str(port)],
        # The web answers booking systems; on a shared host the workers' bursts of CPU
        # (mail, database) must not queue its requests, so they run at a lower priority.
        "worker": [*telemed, "worker", "--processes", str(processes), "--threads", str(threads),
                   "--nice", str(WORKER_NICENESS)],
        "scheduler": [*telemed, "scheduler"],
    }


def run_all(settings: Settings, host: str, port: int, processes: int, threads: int) -> int:
    upgrade(settings.resolved_database_url)
    env = dict(os.environ)
    if not settings.redis_sentinels:
        # Unset: the embedded server starts here, in this process, and the children use it.
        env["TELEMED_REDIS_URL"] = redis_url(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    children: list[Child] = []
    try:
        for name, command in child_commands(host, port, processes, threads).items():
            children.append(Child(name, subprocess.Popen(command, env=env)))  # noqa: S603  (our own command)
        log.info("telemed running", web=f"http://{host}:{port}", embedded_redis=not (settings.redis_url or settings.redis_sentinels),
                 pid=os.getpid())
        failed = _supervise(children, stop)
    finally:
        _stop_all(children)
    return 1 if failed else 0


def _supervise(children: list[Child], stop: threading.Event) -> str | None:
    """Wait for a stop signal or a child that exits; the name of a child that died, if any."""
    while not stop.wait(0.5):
        for child in children:
            code = child.process.poll()
            if code is not None:
                log.error("a part of telemed exited; stopping the rest", part=child.name, exit_code=code)
                return child.name
    return None


def _stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("a part did not stop in time; killing it", part=child.name)
            child.process.kill()
            child.process.wait()
