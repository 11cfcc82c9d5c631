"""The guard that keeps tests/unit pure: no sockets bound or connected, no processes.

tests/unit is for logic that needs nothing running; a unit test that starts a server,
connects to Redis or a database, or spawns a process belongs in tests/integration. The
guard raises at the first such call and, in case the code under test swallows the error
(a client retrying, a thread dying quietly), also fails the test at teardown.
``socket.socketpair()`` stays allowed: it neither binds nor connects.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest


class ServerInUnitTest(BaseException):
    """A BaseException, so an ``except Exception`` in the code under test cannot hide it."""


@dataclass
class Guard:
    violations: list[str] = field(default_factory=list)

    def refuse(self, what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            shown = ", ".join(repr(a) for a in args[1:] if what != "os.fork")  # args[0]: the socket or Popen
            message = f"{what}({shown}) in a unit test: move the test to tests/integration"
            self.violations.append(message)
            raise ServerInUnitTest(message)
        return refused

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for method in ("bind", "connect", "connect_ex", "listen"):
            monkeypatch.setattr(socket.socket, method, self.refuse(f"socket.{method}"))
        monkeypatch.setattr(subprocess.Popen, "__init__", self.refuse("subprocess.Popen"))
        monkeypatch.setattr(os, "fork", self.refuse("os.fork"))  # multiprocessing
