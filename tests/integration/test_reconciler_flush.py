"""A FLUSHALL loses nothing: the store is the truth and the reconciler re-queues what it owes.

Real worker processes, the Zoom simulator over HTTP, real SMTP, and a Redis of the test's
own (a real redis-server on the real backend), flushed while work is queued.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlmodel import select

from telemed.samples import DOCTORS, booking
from telemed.store import outbox
from telemed.store.operations import ZoomWebhookReceipt, record_receipt
from tests.conftest import REAL_REDIS_URL
from tests.support.pipeline import Pipeline
from tests.support.private_redis import private_redis
from tests.support.processes import stop_workers

pytestmark = pytest.mark.integration


@pytest.fixture
def flushable(backend, zoom_sim, smtp, tmp_path, redis_namespace) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    shared_redis, database_url = backend
    with private_redis(real=shared_redis == REAL_REDIS_URL) as redis_url:
        p = Pipeline(
            redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
            zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
            zoom_credentials={"account_id": "test-account", "client_id": "test-client",
                              "client_secret": "test-secret"},
            smtp_url=smtp.url(), workdir=tmp_path,
            extra_env={"TELEMED_RECONCILE_GRACE_SECONDS": "0"},
        )
        p.start_worker()
        try:
            yield p
        finally:
            p.stop()


def test_flushall_loses_nothing(flushable: Pipeline, zoom_sim, smtp) -> None:  # type: ignore[no-untyped-def]
    p = flushable
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    p.publish([booking("F-1", 1, start), booking("F-2", 1, start, doctor=DOCTORS[1])])
    p.wait_settled()
    f2_meeting = p.meetings()["F-2"].zoom_meeting_id

    # With no worker running, owe work of every kind, queued in Redis only as a trigger.
    stop_workers(p)
    p.publish([booking("F-1", 2, start + timedelta(hours=1), type="appointment.rescheduled"),
               booking("F-3", 1, start, doctor=DOCTORS[2])])
    body = json.dumps({"event": "meeting.started", "event_ts": 1,
                       "payload": {"object": {"id": str(f2_meeting), "host_id": "h"}}}).encode()
    with p.database.session() as s:
        receipt, _ = record_receipt(s, raw_body=body, event="meeting.started", payload=body.decode(),
                                    zoom_meeting_id=f2_meeting)
        owed = outbox.add_message(s, appointment_id="F-2", version=1, role="patient", kind="updated")
        s.flush()
        assert owed is not None and receipt.id is not None
        owed_id, receipt_id = owed.id, receipt.id
    client = redis.Redis.from_url(p.redis_url)
    assert client.dbsize() > 0  # the triggers are queued ...
    client.flushall()  # ... and gone
    assert client.dbsize() == 0

    p.start_worker()
    result = p.run_cli("scheduler", "--once")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    p.wait_settled(timeout=90)
    p.wait_until(lambda: _receipt_status(p, receipt_id) == "processed", what="the webhook receipt")

    appointments = p.appointments()
    assert {a: appointments[a].state for a in ("F-1", "F-3")} == {"F-1": "provisioned", "F-3": "provisioned"}
    assert appointments["F-2"].state == "in_progress"
    assert appointments["F-1"].synced_version == 2
    assert p.meetings()["F-1"].start_time == start + timedelta(hours=1)
    sim = {m["id"]: m for m in zoom_sim.meetings()}
    assert sim[p.meetings()["F-1"].zoom_meeting_id]["meeting"]["start_time"] == (
        (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert len(sim) == 3  # one meeting each: nothing created twice
    [row] = [m for m in p.outbox() if m.id == owed_id]
    assert row.status == "sent"
    assert any(".v1.patient.updated." in str(m["Message-ID"]) for m in smtp.wait_for(1))


def _receipt_status(p: Pipeline, receipt_id: int) -> str:
    with p.database.session() as s:
        receipt = s.exec(select(ZoomWebhookReceipt).where(ZoomWebhookReceipt.id == receipt_id)).one()
        return receipt.status
