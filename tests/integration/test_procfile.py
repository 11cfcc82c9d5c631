"""The Procfile under honcho: web, worker and scheduler start, take a signed event, stop cleanly."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from telemed.samples import booking
from tests.support.pipeline import REPO
from tests.support.processes import stop_workers
from tests.support.webserver import free_port

pytestmark = pytest.mark.integration
SECRET = "procfile-test-secret"


def _telemed_on_path(tmp_path: Path) -> str:
    """The directory holding ``telemed`` for this interpreter (the installed script, else a shim)."""
    bindir = Path(sys.executable).parent
    if (bindir / "telemed").exists():
        return str(bindir)
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "telemed"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m telemed "$@"\n')
    shim.chmod(0o755)
    return f"{shim_dir}{os.pathsep}{bindir}"


def test_procfile_runs_under_honcho(single_pipeline, zoom_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pipeline = single_pipeline
    stop_workers(pipeline)  # the Procfile's own worker must do the work
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or shutil.which("honcho")
    assert honcho, "honcho is a test dependency (pip install honcho)"
    port = free_port()
    env = dict(pipeline.env)
    env.update({"PATH": f"{_telemed_on_path(tmp_path)}{os.pathsep}{env.get('PATH', '')}",
                "TELEMED_INGRESS_SECRET": SECRET, "TELEMED_SCHEDULER_INTERVAL_SECONDS": "1"})
    log = tmp_path / "honcho.log"
    process = subprocess.Popen([honcho, "start", "-f", str(REPO / "Procfile"), "-d", str(tmp_path), "-p", str(port)],
                               env=env, cwd=tmp_path, stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "web did not become ready\n" + log.read_text()[-3000:]
            time.sleep(0.2)
        event = booking("PF-1", 1, datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
        body = json.dumps(event).encode()
        ts = str(int(time.time()))
        mac = hmac.new(SECRET.encode(), f"v1:{ts}:".encode() + body, hashlib.sha256).hexdigest()
        answer = httpx.post(f"{url}/v1/events", content=body,
                            headers={"X-Telemed-Timestamp": ts, "X-Telemed-Signature": f"v1={mac}"})
        assert answer.status_code == 202, answer.text
        pipeline.wait_settled()
        assert pipeline.appointments()["PF-1"].state == "provisioned"
        text = log.read_text()
        for name in ("web.1", "worker.1", "scheduler.1"):
            assert name in text, f"{name} did not start:\n{text[-3000:]}"
    finally:
        process.send_signal(signal.SIGTERM)  # honcho passes it on to each process
        try:
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert len([line for line in text.splitlines() if "stopped (rc=" in line]) == 3, text[-3000:]
    assert "SIGKILL" not in text  # every part stopped on SIGTERM within honcho's grace period
    assert code == 143  # honcho's own exit code after a SIGTERM


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
