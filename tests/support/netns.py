"""Hosts on separate network stacks, on this machine: Linux network namespaces (root only).

:class:`Network` makes a bridge in the root namespace with ``10.231.N.1/24`` (N chosen free
for this run) and, per host, a namespace joined to the bridge by a veth pair of its own,
the host at ``10.231.N.(10+k)``. Services in the root namespace (Redis, Sentinels,
PostgreSQL, the Zoom simulator, the mail server) listen on the bridge address; each
host reaches them only over its link. Names carry a random id, so parallel runs never
collide; :meth:`Network.close` removes everything it made, also after a failure.

:meth:`Network.cut` takes one host's link down (the root side of its veth): the host's
packets go nowhere, its connections hang until their timeouts, as when a cable is pulled.

Zoom's and SMTP's URLs must be TLS unless they are loopback, so each host runs ``socat``
relays from its own loopback to the simulator and mail server on the bridge.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=check)


def usable() -> str | None:
    """Why network namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@dataclass
class Host:
    name: str  # e.g. "worker-1"
    netns: str
    veth_root: str
    veth_host: str
    address: str
    relays: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host's network namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]


@dataclass
class Network:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    subnet: int = 0
    hosts: dict[str, Host] = field(default_factory=dict)
    bridge: str = ""

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge: where the services listen."""
        return f"10.231.{self.subnet}.1"

    def open(self, names: list[str]) -> None:
        taken = _ip("-o", "-4", "addr").stdout
        free = [n for n in range(1, 255) if f"10.231.{n}." not in taken]
        self.subnet = random.choice(free)
        self.bridge = f"tm{self.run_id}b"
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for k, name in enumerate(names, start=1):
            host = Host(name, f"tm{self.run_id}h{k}", f"tm{self.run_id}v{k}", f"tm{self.run_id}p{k}",
                        f"10.231.{self.subnet}.{10 + k}")
            self.hosts[name] = host
            _ip("netns", "add", host.netns)
            _ip("link", "add", host.veth_root, "type", "veth", "peer", "name", host.veth_host)
            _ip("link", "set", host.veth_host, "netns", host.netns)
            _ip("link", "set", host.veth_root, "master", self.bridge)
            _ip("link", "set", host.veth_root, "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", host.veth_host)
            _ip("-n", host.netns, "link", "set", host.veth_host, "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")

    def relay(self, host: Host, port: int) -> None:
        """127.0.0.1:port inside ``host`` forwards to the bridge address's ``port``."""
        host.relays.append(subprocess.Popen(
            host.command(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                          f"TCP:{self.gateway}:{port},connect-timeout=5"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    def cut(self, name: str) -> None:
        _ip("link", "set", self.hosts[name].veth_root, "down")

    def restore(self, name: str) -> None:
        _ip("link", "set", self.hosts[name].veth_root, "up")

    def close(self) -> None:
        for host in self.hosts.values():
            for relay in host.relays:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(relay.pid, 9)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    relay.wait(timeout=5)
            _ip("link", "del", host.veth_root, check=False)  # takes its peer with it
            _ip("netns", "del", host.netns, check=False)
        if self.bridge:
            _ip("link", "del", self.bridge, check=False)


@contextmanager
def network(names: list[str]) -> Iterator[Network]:
    why = usable()
    if why:
        pytest.skip(f"the cluster test {why}")
    net = Network()
    try:
        net.open(names)
        yield net
    finally:
        net.close()
