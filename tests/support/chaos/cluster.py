"""The processes of a crash run: ``telemed web``, three ``telemed worker`` and a
``telemed scheduler``, each a real process group of its own, with their logs in files.

:class:`Killer` SIGKILLs one random worker's whole process group every few seconds
(the supervisor and its forked worker together, like a container or host dying) and
starts a fresh one in its place.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Proc:
    name: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, env: dict[str, str], cwd: Path) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it from here)
        log.write(f"\n--- start #{self.starts + 1} at {time.strftime('%H:%M:%S')} ---\n".encode())
        log.flush()
        self.process = subprocess.Popen(self.command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hooks, no acks, nothing flushed."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Cluster:
    env: dict[str, str]
    workdir: Path
    web_port: int
    workers: int = 3
    threads: int = 4
    scheduler_interval: float = 2.0
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        telemed = [sys.executable, "-m", "telemed"]
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.procs["web"] = Proc("web", [*telemed, "web", "--port", str(self.web_port)], logs / "web.log")
        for n in range(1, self.workers + 1):
            self.procs[f"worker-{n}"] = Proc(
                f"worker-{n}", [*telemed, "worker", "--processes", "1", "--threads", str(self.threads)],
                logs / f"worker-{n}.log")
        self.procs["scheduler"] = Proc(
            "scheduler", [*telemed, "scheduler", "--interval", str(self.scheduler_interval)], logs / "scheduler.log")

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def worker_procs(self) -> list[Proc]:
        return [p for name, p in self.procs.items() if name.startswith("worker-")]

    def start(self) -> None:
        for proc in self.procs.values():
            proc.start(self.env, self.workdir)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.web_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            web = self.procs["web"]
            if not web.alive or time.monotonic() > deadline:
                raise AssertionError(f"telemed web did not come up:\n{self.log_tail('web')}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.alive and proc.process is not None:
                os.killpg(proc.process.pid, signal.SIGTERM)
        for proc in self.procs.values():
            proc.stop()

    def check_alive(self) -> None:
        """Anything but a worker we killed on purpose dying is a failure of the run."""
        for proc in self.procs.values():
            if proc.process is not None and proc.process.poll() is not None and not proc.name.startswith("worker-"):
                raise AssertionError(f"{proc.name} exited with {proc.process.returncode}:\n{self.log_tail(proc.name)}")

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.procs[name].log_path
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def logs(self) -> dict[str, str]:
        return {name: p.log_path.read_text(errors="replace") for name, p in self.procs.items() if p.log_path.exists()}


@dataclass
class Killer:
    """Every ``every`` seconds (± jitter), SIGKILL one random worker and start a new one."""

    cluster: Cluster
    every: tuple[float, float] = (2.0, 4.0)
    seed: int = 11
    kills: int = 0
    unexpected_exits: list[str] = field(default_factory=list)  # workers that died without our SIGKILL
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        while not self._stop.wait(rng.uniform(*self.every)):
            self._restart_dead()
            victim = rng.choice(self.cluster.worker_procs)
            victim.kill()
            self.kills += 1
            victim.start(self.cluster.env, self.cluster.workdir)
        self._restart_dead()

    def _restart_dead(self) -> None:
        for proc in self.cluster.worker_procs:
            if not proc.alive:
                assert proc.process is not None
                self.unexpected_exits.append(f"{proc.name} exited with {proc.process.returncode}")
                proc.start(self.cluster.env, self.cluster.workdir)
