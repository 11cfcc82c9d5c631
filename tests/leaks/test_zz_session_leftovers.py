"""After everything else: what the whole test session left behind, searched for secrets.

Runs after tests/chaos, tests/fuzz and tests/integration (pytest collects in path order,
and this file sorts last in tests/leaks). Every process log and SQLite file those tests
wrote under the session's temporary directory, and every key left in the test Redis,
is searched by shape for secrets that must never be written down: start-link ZAKs,
join-link passcodes, API keys, bearer tokens and, in logs and Redis, any email address.
The exact-value scan of one run is tests/leaks/test_leak_scan.py; this one covers what
the other suites' runs wrote, whatever their secrets were.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

pytestmark = pytest.mark.integration

SECRETS = {
    "a start link's ZAK": re.compile(rb"zak=[A-Za-z0-9_-]{16,}"),
    "a join link's passcode": re.compile(rb"pwd=[A-Za-z0-9_.-]{8,}"),
    "an API key": re.compile(rb"tmk_[0-9a-f]{10}_[A-Za-z0-9_-]{20,}"),
    "a bearer token": re.compile(rb"[Bb]earer [A-Za-z0-9_-]{24,}"),
}
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Logs of programs that are not telemed (the benchmarks' baselines) and browser profiles.
NOT_OURS = ("chromium-profile", "baseline", "raw-dramatiq")


def _files(root: Path, *patterns: str) -> Iterator[Path]:
    for pattern in patterns:
        for path in sorted(root.rglob(pattern)):
            if path.is_file() and not any(part in str(path) for part in NOT_OURS):
                yield path


def _hits(name: str, data: bytes, *, emails: bool) -> list[str]:
    found = [f"{what} in {name}: {m.group(0)[:24]!r}…" for what, rx in SECRETS.items() for m in rx.finditer(data)]
    if emails:
        found += [f"an email address in {name}: {m.group(0)[:3]!r}…" for m in EMAIL.finditer(data)]
    return found


def test_nothing_the_session_wrote_holds_a_secret(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> None:
    root = tmp_path_factory.getbasetemp()
    hits: list[str] = []
    logs = list(_files(root, "*.log"))
    for path in logs:
        hits += _hits(f"log {path.relative_to(root)}", path.read_bytes(), emails=True)
    databases = list(_files(root, "*.db", "*.db-wal", "*.db-journal"))
    for path in databases:  # doctors' work addresses are stored in the clear by design
        hits += _hits(f"SQLite file {path.relative_to(root)}", path.read_bytes(), emails=False)
    client = redis.Redis.from_url(redis_url)
    keys = 0
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
        hits += _hits(f"Redis key {key.decode(errors='replace')}", value, emails=True)
    client.close()
    if not logs:
        pytest.skip("no process logs in this session to scan: run it after the integration suites")
    assert hits == [], f"{len(hits)} secret(s) left behind in {len(logs)} logs, {len(databases)} SQLite files, " \
        f"{keys} Redis keys:\n  " + "\n  ".join(sorted(set(hits))[:50])
