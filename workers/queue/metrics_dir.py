"""Where the worker processes' Prometheus metrics meet: a directory set before any metric exists.

prometheus_client decides for each metric, when it is created, whether its values go to
the multiprocess directory. So this module declares and imports no metric, and
``telemed worker`` calls :func:`prepare_multiprocess` before it imports anything that
declares one (a metric created first would count in the supervising process only).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from telemed.foundation.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess(settings: Settings) -> str | None:
    """Before worker processes start: a fresh directory for their shared metric files."""
    if not settings.worker_metrics_port:
        return None
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="telemed-metrics-")
        os.environ[MULTIPROC_ENV] = path
        # Removed when this (the supervising) process exits; forked workers leave by os._exit.
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
