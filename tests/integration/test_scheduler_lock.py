"""Two ``telemed scheduler`` processes: exactly one is active; stopping it hands over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _start(pipeline, log: Path) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "telemed", "scheduler", "--interval", "0.3"],
                            env=pipeline.env, cwd=pipeline.workdir, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _roles(log: Path) -> list[str]:
    roles = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line).get("event", "")
        except ValueError:
            continue
        if event.startswith("scheduler active"):
            roles.append("active")
        elif event.startswith("scheduler standby"):
            roles.append("standby")
    return roles


def _wait(condition, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_active_scheduler_and_handover(single_pipeline, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pipeline = single_pipeline
    logs = [tmp_path / "scheduler-a.log", tmp_path / "scheduler-b.log"]
    processes = [_start(pipeline, logs[0])]
    try:
        _wait(lambda: _roles(logs[0]) == ["active"], "the first scheduler to become active")
        processes.append(_start(pipeline, logs[1]))
        _wait(lambda: _roles(logs[1]) == ["standby"], "the second scheduler to stand by")
        time.sleep(1.5)  # several passes: the roles hold
        assert _roles(logs[0]) == ["active"] and _roles(logs[1]) == ["standby"]

        os.killpg(processes[0].pid, signal.SIGTERM)
        assert processes[0].wait(timeout=20) == 0
        _wait(lambda: _roles(logs[1]) == ["standby", "active"], "the standby to take over", timeout=10)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
