"""``telemed worker`` and ``telemed run``: what the worker processes are started with."""

from __future__ import annotations

from typing import Any

import pytest

from telemed import run, worker


def test_run_starts_workers_below_the_web_priority() -> None:
    commands = run.child_commands("127.0.0.1", 8000, processes=2, threads=4)
    assert commands["worker"][-2:] == ["--nice", str(run.WORKER_NICENESS)]
    assert "--nice" not in commands["web"]
    assert run.WORKER_NICENESS > 0


@pytest.mark.parametrize("nice", [0, 7])
def test_worker_lowers_its_priority_and_sizes_the_pool(monkeypatch: pytest.MonkeyPatch, nice: int) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(worker.os, "nice", lambda n: calls.append(("nice", n)))
    def fake_dramatiq(parsed: Any) -> int:
        calls.append(("dramatiq", parsed.threads))
        return 0

    monkeypatch.setattr(worker, "dramatiq_main", fake_dramatiq)
    monkeypatch.setattr("telemed.workers.queue.metrics_dir.prepare_multiprocess", lambda settings: None)
    assert worker.run_workers(processes=1, threads=3, nice=nice) == 0
    assert calls == ([("nice", nice)] if nice else []) + [("dramatiq", 3)]


def test_each_worker_process_sizes_its_pool_by_its_threads(tmp_path: Any) -> None:
    """Dramatiq tells the pipeline how many threads the process runs, before any message
    (the database pool keeps a connection for each: workers.context)."""
    from types import SimpleNamespace

    from dramatiq.brokers.stub import StubBroker

    from telemed.bootstrap import Pipeline
    from telemed.settings import load_settings
    from telemed.workers.queue.work_queue import WorkQueue

    settings = load_settings(redis_url="redis://127.0.0.1:1/0", data_dir=tmp_path)
    broker = StubBroker()
    pipeline = Pipeline(settings, broker, WorkQueue(broker))
    broker.emit_before("worker_boot", SimpleNamespace(worker_threads=3))
    assert pipeline.context().threads == 3
