"""Processes the benchmarks start, and what they cost: CPU seconds and peak memory.

Every process runs in a session of its own, so stopping or killing it reaches its
children too (``telemed worker`` is a Dramatiq supervisor with one child per process).
CPU time and RSS are read with psutil (``/proc`` on Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MB = 1024 * 1024


@dataclass
class Proc:
    """A process started by a benchmark, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, args: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Proc:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(list(args), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return cls(name=name, popen=popen, log_path=log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The process and its descendants that are still running."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.tree())

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_tail()
            raise RuntimeError(f"{self.name} exited with code {self.popen.returncode}: {last_words(tail)}\n{tail}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: like the machine losing the process."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()

    def pause(self) -> None:
        """SIGSTOP to the process group: alive, but fetching nothing until :meth:`resume`."""
        os.killpg(self.pid, signal.SIGSTOP)

    def wait_paused(self, timeout: float = 10) -> None:
        def stopped() -> bool:
            states = []
            for process in self.tree():
                with contextlib.suppress(psutil.NoSuchProcess):
                    states.append(process.status())
            return bool(states) and all(s == psutil.STATUS_STOPPED for s in states)

        wait_until(stopped, timeout=timeout, what=f"{self.name} to pause", interval=0.02)
        time.sleep(0.2)  # a command sent just before the stop has reached Redis by now

    def resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 20) -> None:
        self.resume()  # a paused process cannot handle SIGTERM
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        # Dramatiq's children may outlive a supervisor that was killed first.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def last_words(log: str) -> str:
    """The last line of a log, or of the traceback a JSON log line carries."""
    lines = [line for line in log.strip().splitlines() if line.strip()]
    if not lines:
        return "no output"
    last = lines[-1]
    if "\\n" in last:  # a traceback inside a JSON string
        last = [part for part in last.split("\\n") if part.strip()][-1]
    return last.strip().strip('"}')[:200]


def cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system
    return total


def local_server_processes(names: Iterable[str]) -> list[psutil.Process]:
    """Processes on this machine by name (a local Redis or PostgreSQL), for CPU accounting."""
    wanted = set(names)
    found = []
    for process in psutil.process_iter(["name"]):
        name = process.info.get("name") or ""
        if name in wanted or any(name.startswith(w + ":") for w in wanted):
            found.append(process)
    return found


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05,
               watch: Sequence[Proc] = ()) -> float:
    """Poll until ``condition()``; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return time.monotonic()
        for proc in watch:
            proc.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class PeakMemory:
    """Peak RSS per process of the watched process trees, sampled in a thread."""

    interval: float = 0.1
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (label, bytes)
    _watched: list[tuple[str, Proc]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, label: str, proc: Proc) -> None:
        self._watched.append((label, proc))

    def start(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        for label, proc in list(self._watched):
            for position, process in enumerate(proc.tree()):
                try:
                    rss = process.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                name = label if position == 0 else f"{label} child"
                _, peak = self.peaks.get(process.pid, (name, 0))
                self.peaks[process.pid] = (name, max(peak, rss))

    def by_label(self) -> list[tuple[str, int, int]]:
        """``(label, pid, peak bytes)``, in label order."""
        return sorted(((label, pid, peak) for pid, (label, peak) in self.peaks.items()), key=lambda r: (r[0], r[1]))


class CpuMeter:
    """CPU seconds used by named groups of processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(find()) for name, find in self.groups.items()}

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        end = self._now()
        return {name: max(0.0, end[name] - self._start.get(name, 0.0)) for name in self.groups}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs, every process), for telling
    whether a run was limited by CPU."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
