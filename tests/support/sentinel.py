"""A Redis group of a test's own: a primary, a replica and three Sentinels (real
``redis-server`` processes; Sentinel mode is ``redis-server --sentinel``), on private ports
of one address (loopback, or an address on a link the test made), never the shared Redis.

:meth:`SentinelGroup.failover` asks the Sentinels for a graceful failover (nothing lost);
:meth:`SentinelGroup.lossy_failover` makes one that loses what the replica never got, the
way asynchronous replication can: the replica is frozen (SIGSTOP) while writes go on,
then the primary is SIGKILLed and the thawed replica promoted. Every wait is bounded;
:meth:`SentinelGroup.stop` ends every process, also after a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.webserver import free_port

DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000


@dataclass
class Node:
    name: str
    port: int
    config: Path
    log: Path
    sentinel: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        command = [binary, str(self.config)] + (["--sentinel"] if self.sentinel else [])
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.1) -> float:
    """Poll ``condition`` until true; the seconds it took. Fails the test after ``timeout``."""
    began = time.monotonic()
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class SentinelGroup:
    workdir: Path
    host: str = "127.0.0.1"
    master_name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed for the Sentinel tests (Debian: apt-get install redis-server)")
        self.binary = binary
        self.workdir.mkdir(parents=True, exist_ok=True)

    # Addresses ---------------------------------------------------------------------

    @property
    def sentinels(self) -> str:
        """TELEMED_REDIS_SENTINELS for this group."""
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes.values() if n.sentinel)

    def client(self, name: str) -> redis.Redis:
        return redis.Redis(self.host, self.nodes[name].port, socket_timeout=3, socket_connect_timeout=3)

    def data_nodes(self) -> list[str]:
        return [name for name, n in self.nodes.items() if not n.sentinel]

    def primary(self) -> str:
        """The data node every Sentinel names as primary."""
        agreed = self.agreed_primary()
        if agreed is None:
            raise AssertionError("the Sentinels disagree on the primary")
        return agreed

    def agreed_primary(self) -> str | None:
        """The data node every running Sentinel names as primary (None while they disagree)."""
        named = set()
        for name, node in self.nodes.items():
            if node.sentinel and node.process is not None and node.process.poll() is None:
                _, port = self.client(name).sentinel_get_master_addr_by_name(self.master_name)
                named.add(int(port))
        if len(named) != 1:
            return None
        port = named.pop()
        return next(name for name, n in self.nodes.items() if n.port == port and not n.sentinel)

    def replica(self) -> str:
        return next(name for name in self.data_nodes() if name != self.primary())

    # Life --------------------------------------------------------------------------

    def start(self) -> None:
        primary, replica = (self._node(f"redis-{n}") for n in ("a", "b"))
        self._write_data_config(primary, replica_of=None)
        self._write_data_config(replica, replica_of=primary.port)
        for n in range(1, 4):
            sentinel = self._node(f"sentinel-{n}", sentinel=True)
            sentinel.config.write_text("\n".join([
                f"port {sentinel.port}", f"bind {self.host}", "protected-mode no", "daemonize no",
                f"dir {self.workdir}",
                f"sentinel monitor {self.master_name} {self.host} {primary.port} 2",
                f"sentinel down-after-milliseconds {self.master_name} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {self.master_name} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {self.master_name} 1", ""]))
        for node in self.nodes.values():
            node.start(self.binary)
        self.wait_healthy(timeout=30)

    def _node(self, name: str, sentinel: bool = False) -> Node:
        node = Node(name, free_port(), self.workdir / f"{name}.conf", self.workdir / f"{name}.log", sentinel)
        self.nodes[name] = node
        return node

    def _write_data_config(self, node: Node, replica_of: int | None) -> None:
        lines = [f"port {node.port}", f"bind {self.host}", "protected-mode no", "daemonize no",
                 f"dir {self.workdir}", f"dbfilename {node.name}.rdb", 'save ""', "appendonly no",
                 f"replica-announce-ip {self.host}", "maxmemory-policy noeviction"]
        if replica_of is not None:
            lines.append(f"replicaof {self.host} {replica_of}")
        node.config.write_text("\n".join(lines) + "\n")

    def wait_healthy(self, timeout: float = 30) -> float:
        """Until the Sentinels agree on a primary that has a replica in sync, and know each other."""
        def healthy() -> bool:
            primary = self.agreed_primary()
            if primary is None:
                return False
            info = self.client(primary).info("replication")
            if info.get("role") != "master" or int(info.get("connected_slaves", 0)) < 1:
                return False
            if self.client(self.replica()).info("replication").get("master_link_status") != "up":
                return False
            for name, node in self.nodes.items():
                if node.sentinel:
                    state = self.client(name).sentinel_master(self.master_name)
                    if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                        return False
                    if state.get("is_sdown") or state.get("is_odown"):
                        return False
            return True
        return wait_for(healthy, "the Sentinel group to be healthy", timeout)

    def failover(self, timeout: float = 30) -> float:
        """A graceful failover (SENTINEL FAILOVER): the seconds until the replica is primary."""
        before = self.primary()
        sentinel = next(name for name, n in self.nodes.items() if n.sentinel)
        began = time.monotonic()
        self.client(sentinel).execute_command("SENTINEL", "FAILOVER", self.master_name)
        # Done when the old primary has been turned into a replica too: until then a client
        # still connected to it writes where the data is lost.
        wait_for(lambda: self._moved_from(before) and self.client(before).info("replication").get("role") == "slave",
                 "the failover", timeout)
        return time.monotonic() - began

    def _moved_from(self, before: str) -> bool:
        now = self.agreed_primary()
        return now is not None and now != before and self.client(now).info("replication").get("role") == "master"

    @contextmanager
    def replica_frozen(self) -> Iterator[None]:
        """The replica stops taking the replication stream (SIGSTOP) for the block."""
        node = self.nodes[self.replica()]
        node.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            node.signal(signal.SIGCONT)

    def kill_primary(self) -> str:
        """SIGKILL the primary; its name (restart it with :meth:`restart`)."""
        killed = self.primary()
        self.nodes[killed].kill()
        return killed

    def wait_promoted(self, killed: str, timeout: float = 30) -> float:
        """The seconds until the Sentinels have promoted another node than ``killed``."""
        return wait_for(lambda: self._moved_from(killed), "the Sentinels to promote the replica", timeout)

    def restart(self, name: str) -> None:
        """Start a killed data node again; the Sentinels make it a replica of the new primary."""
        self.nodes[name].start(self.binary)

    def stop(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                node.signal(signal.SIGCONT)
                node.stop()


@contextmanager
def sentinel_group(workdir: Path, host: str = "127.0.0.1") -> Iterator[SentinelGroup]:
    group = SentinelGroup(workdir, host=host)
    try:
        group.start()
        yield group
    finally:
        group.stop()
