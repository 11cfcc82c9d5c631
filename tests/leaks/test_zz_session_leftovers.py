"""The session-leftover scan (tests/support/leaks/leftovers.py) sees every process's leftovers.

Running this module arms the scan: when the whole run has finished (every xdist worker
included) the controlling process searches every process log and SQLite file the run
wrote, and every key left in the test Redis and in each worker's embedded Redis, for
secrets by shape; a hit fails the run and is listed under "session leftovers". The test
here proves the scan sees what other workers left: a run of two workers, each planting
a ZAK in a log and an address in its own embedded Redis, must fail naming all four.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.leaks.leftovers import MARKER

pytestmark = [pytest.mark.integration, getattr(pytest.mark, MARKER)]
REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.conftest import embedded_redis  # noqa: F401  (records its leftovers when it stops)
from tests.support.leaks import leftovers


def pytest_configure(config):
    leftovers.register(config, None)
"""

PLANTING = """
import os

import pytest
import redis

pytestmark = pytest.mark.session_leftovers


def test_leave_something_behind(tmp_path, embedded_redis):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    (tmp_path / "worker.log").write_text(f"GET /s/9?zak=PLANTED{worker}xxxxxxxxxxxxxxxx")
    redis.Redis.from_url(embedded_redis.url).set(f"planted:{worker}", f"{worker}@example.org")
"""


def test_the_scan_sees_what_every_worker_left(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_planting.py").write_text(PLANTING)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEMED_TEST_", "PYTEST_"))}
    env["PYTHONPATH"] = str(REPO)
    basetemp = tmp_path / "basetemp"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-n", "2", "--dist", "each", "-p", "no:cacheprovider",
             f"--basetemp={basetemp}", "-o", "addopts=", "-q"],
            cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)  # planted on purpose: not this session's leftovers
    out = run.stdout + run.stderr
    assert "2 passed" in out, out  # both workers planted
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "session leftovers: FAILED" in out, out
    for worker in ("gw0", "gw1"):
        assert f"a start link's ZAK in log popen-{worker}/" in out, out
        assert f"an email address in embedded Redis ({worker}) key planted:{worker}" in out, out
