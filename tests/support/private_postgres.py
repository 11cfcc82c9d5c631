"""A PostgreSQL instance of a test's own (initdb and pg_ctl under a temporary directory),
so restarting it never disturbs the shared one other tests use. Runs as the ``postgres``
user (the server refuses root); listens on the given address and a private socket."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.webserver import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip(f"PostgreSQL's {name} is not installed")
    return found[-1]


@dataclass
class PrivatePostgres:
    directory: Path
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/telemed"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, timeout=timeout,
                       capture_output=True)

    def _ctl(self, action: str, *extra: str) -> None:
        self._run(_bin("pg_ctl"), action, "-D", str(self.directory / "data"), "-w", "-t", "60",
                  "-l", str(self.directory / "postgres.log"), *extra)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> float:
        """Stop (fast: connections cut) and start again; the seconds it was away."""
        began = time.monotonic()
        self._ctl("restart", "-m", "fast")
        return time.monotonic() - began

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", _bin("pg_ctl"), "stop", "-D",
                        str(self.directory / "data"), "-m", "immediate", "-w", "-t", "30"],
                       timeout=60, capture_output=True, check=False)


@contextmanager
def private_postgres(host: str = "127.0.0.1") -> Iterator[PrivatePostgres]:
    """In a directory of its own under the system temp dir (the ``postgres`` user must reach
    it), removed afterwards."""
    if shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("a private PostgreSQL needs root (runuser -u postgres)")
    owner = pwd.getpwnam("postgres")
    directory = Path(tempfile.mkdtemp(prefix="telemed-pg-"))
    os.chown(directory, owner.pw_uid, owner.pw_gid)
    pg = PrivatePostgres(directory, host, free_port())
    data = directory / "data"
    pg._run(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(f"\nlisten_addresses = '{host}'\nport = {pg.port}\nunix_socket_directories = '{directory}'\n"
                   "fsync = off\nmax_connections = 200\n")
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {host.rsplit('.', 1)[0]}.0/24 trust\n")
    try:
        pg.start()
        pg._run(_bin("createdb"), "-h", str(directory), "-p", str(pg.port), "telemed")
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(directory, ignore_errors=True)
