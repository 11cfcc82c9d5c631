"""``telemed worker``: Dramatiq's own process supervisor running our actor module."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dramatiq.cli import main as dramatiq_main
from dramatiq.cli import make_argument_parser

from telemed.settings import get_settings

# Declares no metric: a metric created before prepare_multiprocess counts nowhere.
from telemed.workers.queue.metrics_dir import prepare_multiprocess

ACTOR_MODULE = "telemed.worker_entry:broker"  # Dramatiq imports the module and takes its broker


def dramatiq_args(processes: int, threads: int, queues: Sequence[str] = ()) -> list[str]:
    args = [ACTOR_MODULE, "--processes", str(processes), "--threads", str(threads)]
    if queues:
        args += ["--queues", *queues]
    return args


def run_workers(processes: int, threads: int, queues: Sequence[str] = (), nice: int = 0) -> int:
    prepare_multiprocess(get_settings())  # before the processes start (TELEMED_WORKER_METRICS_PORT)
    if nice:
        os.nice(nice)  # inherited by every worker process Dramatiq starts
    parsed = make_argument_parser().parse_args(dramatiq_args(processes, threads, queues))
    return int(dramatiq_main(parsed) or 0)
