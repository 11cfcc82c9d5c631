"""``telemed publish`` under hypothesis: batches of broken events and junk, as a JSON
array, JSON lines or raw bytes. Every item is accepted or rejected by name, the exit
status says whether anything was rejected, and no traceback ever reaches the terminal.

In-process through click's CliRunner on the real store (SQLite, and PostgreSQL when
configured) for many examples, and once as a real ``python -m telemed publish -``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from telemed.events.publish import Publisher
from telemed.publish_cli import format_loc
from tests.support.fuzz.settings import fuzz
from tests.support.fuzz.strategies import Mutation, base_event, junk_bodies, mutations

pytestmark = pytest.mark.integration

_ITEM = re.compile(r"^(event|item \d+|line \d+): (rejected|\S+ (accepted|duplicate))$")
_LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \[|\{\")")
_SUMMARY = re.compile(r"^(\d+) accepted, (\d+) duplicate, (\d+) rejected$")


@pytest.fixture
def run_cli(database, monkeypatch):  # type: ignore[no-untyped-def]
    from telemed.cli import main

    queued: list[str] = []
    module = sys.modules[Publisher.__module__]  # events.publish the module (the package exports a function)
    monkeypatch.setattr(module, "_default", Publisher(database=database, enqueue=queued.append))
    monkeypatch.setattr("telemed.cli._setup_logging", lambda: None)  # the suite's logging stays as it is
    runner = CliRunner()

    def run(raw: bytes) -> tuple[int, str]:
        result = runner.invoke(main, ["publish", "-"], input=raw, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"telemed publish raised {type(result.exception).__name__}: {result.exception}")
        return result.exit_code, result.output

    return run


def _report(output: str) -> tuple[list[tuple[str, str, list[str]]], tuple[int, int, int]]:
    """(where, outcome, named paths) per item, and the summary counts."""
    items: list[tuple[str, str, list[str]]] = []
    summary = None
    for line in output.splitlines():
        if _LOG_LINE.match(line):
            continue  # the suite's own structlog output, printed in-process
        if line.startswith("  "):
            assert items and items[-1][1] == "rejected", f"a field line outside a rejection: {line!r}"
            path, _, message = line[2:].partition(": ")
            assert path and message.strip(), f"a rejection line without field or message: {line!r}"
            items[-1][2].append(path)
        elif (match := _SUMMARY.match(line)) is not None:
            summary = (int(match[1]), int(match[2]), int(match[3]))
        else:
            match = _ITEM.match(line)
            assert match is not None, f"unexpected output line: {line!r}"
            items.append((match[1], "rejected" if match[2] == "rejected" else match[3], []))
    assert summary is not None, f"no summary line in:\n{output}"
    return items, summary


@fuzz(60, fixtures=True)
@given(st.lists(st.one_of(mutations(), st.just(None)), min_size=1, max_size=6))
def test_a_batch_reports_every_item_by_name(run_cli, batch: list[Mutation | None]) -> None:  # type: ignore[no-untyped-def]
    events: list[Any] = [m.event if m is not None else base_event() for m in batch]
    code, output = run_cli(json.dumps(events, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    assert "Traceback" not in output
    items, (accepted, duplicate, rejected) = _report(output)
    assert len(items) == len(batch) == accepted + duplicate + rejected
    assert code == (1 if rejected else 0)
    for (where, outcome, paths), mutation in zip(items, batch, strict=True):
        if outcome == "rejected":
            assert paths, f"{where} rejected without naming a field"
        if mutation is not None and mutation.certain:
            broken = format_loc(list(mutation.path))  # printed quoted and escaped, like the command does
            assert outcome == "rejected", f"{where}: {mutation.how} at {broken} was {outcome}"
            assert any(p.startswith(broken) or broken.startswith(p) for p in paths), (
                f"{where}: {paths} do not name {broken}")


@fuzz(60, fixtures=True)
@given(st.lists(junk_bodies, min_size=1, max_size=5))
def test_junk_never_stops_the_batch(run_cli, junk: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    raw = b"\n".join(junk) + b"\n" + json.dumps(base_event()).encode()
    code, output = run_cli(raw)
    assert "Traceback" not in output
    items, (accepted, duplicate, rejected) = _report(output)
    assert len(items) == accepted + duplicate + rejected
    assert code in (0, 1) and code == (1 if rejected else 0)


def test_the_real_command_rejects_by_name(tmp_path, redis_url, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    """The installed command as a process: junk and broken events, one good one."""
    from cryptography.fernet import Fernet

    from telemed.store.migrate import upgrade

    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(database_url)
    broken = base_event(suffix="cli")
    broken["appointment"]["timezone"] = "Mars/Olympus_Mons"
    past = base_event(suffix="past")
    past["appointment"]["start_time"] = "2020-01-01T10:00:00Z"
    huge = json.dumps(base_event(suffix="huge")).replace('"version": 1', '"version": ' + "7" * 5000)
    twice = json.dumps(base_event(suffix="twice")).replace('"type": ', '"type": "appointment.cancelled", "type": ', 1)
    lines = [b"{not json", json.dumps(broken).encode(), json.dumps(past).encode(), b"[" * 3000,
             b"\xff\xfe\x00", huge.encode(), twice.encode(), json.dumps(base_event(suffix="ok")).encode()]
    env = {"TELEMED_DATABASE_URL": database_url, "TELEMED_REDIS_URL": redis_url,
           "TELEMED_REDIS_NAMESPACE": redis_namespace, "TELEMED_SECRET_KEYS": Fernet.generate_key().decode(),
           "TELEMED_DATA_DIR": str(tmp_path / "data"), "TELEMED_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-m", "telemed", "publish", "-"], input=b"\n".join(lines), env=env,
                            capture_output=True, timeout=120, cwd=tmp_path)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 1, (out + err)[-3000:]
    assert "Traceback" not in out + err
    assert "line 2: rejected\n  appointment.timezone: is not an IANA time zone name" in out
    assert "line 3: rejected\n  appointment.start_time: must be in the future" in out
    assert "line 6: rejected\n  (event): an integer has more than 100 digits" in out  # was a traceback
    assert 'line 7: rejected\n  (event): the key "type" appears twice in one object' in out
    assert "line 8: evt-fz-ok accepted" in out
    assert out.strip().endswith("1 accepted, 0 duplicate, 7 rejected")
