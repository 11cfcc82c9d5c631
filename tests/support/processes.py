"""Stopping a pipeline's worker processes on purpose (to queue work with nobody consuming)."""

from __future__ import annotations

import os
import signal

from tests.support.pipeline import Pipeline


def stop_workers(pipeline: Pipeline) -> None:
    for process in pipeline.workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in pipeline.workers:
        process.wait(timeout=30)
    pipeline.workers.clear()  # stopped on purpose: wait_until must not take it for a crash
