"""The session-leftover scan: what a whole test session left behind, searched for secrets.

Every process log and SQLite file the session wrote under its temporary directory, and
every key left in the test Redis, is searched by shape for secrets that must never be
written down: start-link ZAKs, join-link passcodes, API keys, bearer tokens and, in logs
and Redis, any email address (docs/proving.md, part 3).

Under pytest-xdist each worker runs a session of its own, with its own temporary
directory (``popen-gwN`` below the controller's) and its own embedded Redis, and a
worker knows nothing of the others' progress: a scan run as a test saw one worker's
leftovers, at whatever moment that worker got to it. So the scan runs in the process
that controls the run (the only one without xdist), in ``pytest_sessionfinish``, after
every worker has finished: over the controller's temporary directory, which holds every
worker's; the real Redis when configured; and each embedded Redis's leftovers, which
that server's fixture records (``record_embedded_redis``) before it stops. It runs when
the session ran a test marked ``session_leftovers`` (tests/leaks/test_zz_session_leftovers.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

SECRETS = {
    "a start link's ZAK": re.compile(rb"zak=[A-Za-z0-9_-]{16,}"),
    "a join link's passcode": re.compile(rb"pwd=[A-Za-z0-9_.-]{8,}"),
    "an API key": re.compile(rb"tmk_[0-9a-f]{10}_[A-Za-z0-9_-]{20,}"),
    "a bearer token": re.compile(rb"[Bb]earer [A-Za-z0-9_-]{24,}"),
}
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Logs of programs that are not telemed (the benchmarks' baselines) and browser profiles.
NOT_OURS = ("chromium-profile", "baseline", "raw-dramatiq")
MARKER = "session_leftovers"
EMBEDDED_REDIS_RECORD = "embedded-redis-leftovers-*.json"


def files(root: Path, *patterns: str) -> Iterator[Path]:
    for pattern in patterns:
        for path in sorted(root.rglob(pattern)):
            if path.is_file() and not any(part in str(path) for part in NOT_OURS):
                yield path


def hits(name: str, data: bytes, *, emails: bool) -> list[str]:
    found = [f"{what} in {name}: {m.group(0)[:24]!r}…" for what, rx in SECRETS.items() for m in rx.finditer(data)]
    if emails:
        found += [f"an email address in {name}: {m.group(0)[:3]!r}…" for m in EMAIL.finditer(data)]
    return found


def redis_hits(client: Any, where: str = "Redis") -> tuple[int, list[str]]:
    """(keys scanned, hits) over every key of one Redis database."""
    keys = 0
    found: list[str] = []
    for key in client.scan_iter(count=1000):
        keys += 1
        kind = client.type(key)
        value: bytes = key
        if kind == b"string":
            value += b"\n" + (client.get(key) or b"")
        elif kind == b"hash":
            value += b"\n" + b"\n".join(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == b"list":
            value += b"\n" + b"\n".join(client.lrange(key, 0, -1))
        elif kind in (b"set", b"zset"):
            members = client.smembers(key) if kind == b"set" else client.zrange(key, 0, -1)
            value += b"\n" + b"\n".join(members)
        found += hits(f"{where} key {key.decode(errors='replace')}", value, emails=True)
    return keys, found


def record_embedded_redis(url: str, basetemp: Path) -> None:
    """Scan an embedded Redis before it stops, into a file the session's scan collects
    (the hits only: the excerpts are cut short, no secret is written down again)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    client = redis.Redis.from_url(url)
    try:
        keys, found = redis_hits(client, where=f"embedded Redis ({worker})")
    finally:
        client.close()
    path = basetemp / EMBEDDED_REDIS_RECORD.replace("*", f"{worker}-{os.getpid()}")
    path.write_text(json.dumps({"keys": keys, "hits": found}))


@dataclass
class Findings:
    hits: list[str] = field(default_factory=list)
    logs: int = 0
    databases: int = 0
    keys: int = 0

    def verdict(self) -> str:
        if not self.logs:
            return "skipped: no process logs in this session to scan: run it after the integration suites"
        if not self.hits:
            return f"nothing left behind in {self.logs} logs, {self.databases} SQLite files, {self.keys} Redis keys"
        return f"{len(self.hits)} secret(s) left behind in {self.logs} logs, {self.databases} SQLite files, " \
            f"{self.keys} Redis keys:\n  " + "\n  ".join(sorted(set(self.hits))[:50])


def scan_session(root: Path, real_redis_url: str | None) -> Findings:
    findings = Findings()
    for path in files(root, "*.log"):
        findings.logs += 1
        findings.hits += hits(f"log {path.relative_to(root)}", path.read_bytes(), emails=True)
    for path in files(root, "*.db", "*.db-wal", "*.db-journal"):  # doctors' work addresses are stored in the clear by design
        findings.databases += 1
        findings.hits += hits(f"SQLite file {path.relative_to(root)}", path.read_bytes(), emails=False)
    for path in files(root, EMBEDDED_REDIS_RECORD):
        record = json.loads(path.read_text())
        findings.keys += record["keys"]
        findings.hits += record["hits"]
    if real_redis_url:
        client = redis.Redis.from_url(real_redis_url)
        try:
            keys, found = redis_hits(client)
        finally:
            client.close()
        findings.keys += keys
        findings.hits += found
    return findings


class SessionLeftovers:
    """The pytest plugin: armed by a ``session_leftovers`` test, scans at the very end."""

    def __init__(self, config: pytest.Config, real_redis_url: str | None) -> None:
        self.config = config
        self.real_redis_url = real_redis_url
        self.armed = False
        self.findings: Findings | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if MARKER in report.keywords:  # on the controller, a worker's report
            self.armed = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.armed:
            return
        # The same directory xdist puts every worker's basetemp in (popen-gwN below it).
        root = self.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
        self.findings = scan_session(root, self.real_redis_url)
        if self.findings.hits and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.findings is None:
            return
        failed = bool(self.findings.hits)
        terminalreporter.write_sep("=", "session leftovers: " + ("FAILED" if failed else "scanned"), red=failed,
                                   green=not failed)
        terminalreporter.write_line(self.findings.verdict())


def register(config: pytest.Config, real_redis_url: str | None) -> None:
    config.addinivalue_line("markers", f"{MARKER}: run the session-leftover scan when the whole run has finished")
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        config.pluginmanager.register(SessionLeftovers(config, real_redis_url), "session-leftovers")
