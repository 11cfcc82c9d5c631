"""Which processes count as what when CPU time is split up for the report."""

from __future__ import annotations

from collections.abc import Callable

import psutil

from telemed.benchmarks.procs import Proc, local_server_processes
from telemed.benchmarks.services import Services


def groups(services: Services, **procs: Proc | None) -> dict[str, Callable[[], list[psutil.Process]]]:
    """``procs`` by label (``workers=...``, ``web=...``), plus Redis and the database when they
    run on this machine, plus this process (the Zoom simulator and the polling)."""
    found: dict[str, Callable[[], list[psutil.Process]]] = {}
    for label, proc in procs.items():
        if proc is not None:
            found[label] = proc.tree
    embedded = services.embedded_redis_proc
    if embedded is not None:
        found["Redis (embedded server)"] = embedded.tree
    elif local_server_processes(["redis-server"]):
        found["Redis (local redis-server)"] = lambda: local_server_processes(["redis-server"])
    if services.real_database and local_server_processes(["postgres"]):
        found["PostgreSQL (local server processes)"] = lambda: local_server_processes(["postgres"])
    found["benchmark process (Zoom simulator, polling)"] = lambda: [psutil.Process()]
    return found
