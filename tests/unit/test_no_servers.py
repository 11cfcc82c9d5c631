"""The unit-test guard (tests/unit/conftest.py) stops what a unit test must not do."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest
import redis

from telemed.zoom.simulator import ZoomSimulator
from tests.support.no_servers import Guard, ServerInUnitTest


def _start_simulator() -> None:
    ZoomSimulator().start()


def _ping_redis() -> None:
    redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=0.2).ping()


def _listen() -> None:
    socket.socket().bind(("127.0.0.1", 0))


def _spawn() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=False)


@pytest.mark.parametrize("violation", [_start_simulator, _ping_redis, _listen, _spawn])
def test_a_server_a_connection_or_a_process_is_refused(no_servers: Guard, violation: Callable[[], None]) -> None:
    with pytest.raises(ServerInUnitTest, match="move the test to tests/integration"):
        violation()
    assert no_servers.violations, "the teardown check must see it even if the code swallowed the error"
    no_servers.violations.clear()  # planted on purpose: do not fail this test at teardown


def test_a_swallowed_violation_is_still_recorded(no_servers: Guard) -> None:
    with contextlib.suppress(BaseException):  # what careless code under test might do
        socket.create_connection(("127.0.0.1", 9))
    assert no_servers.violations and "socket.connect" in no_servers.violations[0]
    no_servers.violations.clear()


def test_a_socketpair_stays_allowed() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
