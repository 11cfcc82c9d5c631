"""Zoom webhooks end to end: HTTP → receipt → real worker → store, simulator and mail."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
import requests

from telemed.samples import booking
from tests.support.pipeline import body_text
from tests.support.webapp import (
    ZOOM_SECRET_TOKEN,
    Recorder,
    broker_forwarder,
    running_app,
    settings_for,
    web_services,
)

pytestmark = pytest.mark.integration


def _post(url: str, event: str, meeting_id: int) -> httpx.Response:
    body = json.dumps({"event": event, "event_ts": int(time.time() * 1000),
                       "payload": {"account_id": "acc", "operator": "someone@clinic.example",
                                   "object": {"id": meeting_id, "host_id": "h-1"}}}).encode()
    ts = str(int(time.time()))
    mac = hmac.new(ZOOM_SECRET_TOKEN.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return httpx.post(f"{url}/zoom/webhook", content=body,
                      headers={"x-zm-request-timestamp": ts, "x-zm-signature": f"v0={mac}"})


def test_started_ended_and_a_meeting_deleted_in_zoom_is_reprovisioned(pipeline, zoom_sim, smtp) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    pipeline.publish([booking("W-1", 1, start)])
    pipeline.wait_settled()
    old = pipeline.meetings()["W-1"]
    client = redis.Redis.from_url(pipeline.redis_url)
    recorder = Recorder(forward=broker_forwarder(pipeline.redis_url, pipeline.namespace))
    services = web_services(settings_for(pipeline.namespace), pipeline.database, client, recorder)
    with running_app(services) as url:
        assert _post(url, "meeting.started", old.zoom_meeting_id).json() == {"status": "accepted"}
        pipeline.wait_until(lambda: pipeline.appointments()["W-1"].state == "in_progress", what="in_progress")
        assert _post(url, "meeting.ended", old.zoom_meeting_id).status_code == 200
        pipeline.wait_until(lambda: pipeline.appointments()["W-1"].state == "completed", what="completed")

        # Someone deletes the meeting in Zoom; Zoom tells us; the default policy re-provisions.
        token = zoom_sim.issue_token()
        deleted = requests.delete(f"{zoom_sim.api_url}/meetings/{old.zoom_meeting_id}",
                                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert deleted.status_code == 204
        with pipeline.database.session() as s:  # a later booking state: the meeting is still ahead
            from telemed.store.models import Appointment

            appointment = s.get(Appointment, "W-1")
            assert appointment is not None
            appointment.state = "provisioned"
            s.add(appointment)
        assert _post(url, "meeting.deleted", old.zoom_meeting_id).json() == {"status": "accepted"}
        pipeline.wait_until(lambda: pipeline.meetings()["W-1"].zoom_meeting_id != old.zoom_meeting_id,
                            what="a new meeting")
    pipeline.wait_settled()
    new = pipeline.meetings()["W-1"]
    assert new.deleted_at is None and new.join_url != old.join_url
    assert pipeline.appointments()["W-1"].state == "provisioned"
    # Both were told the new link, once, as an update of version 1.
    updates = sorted((m.role, m.kind, m.status) for m in pipeline.outbox() if m.kind == "updated")
    assert updates == [("doctor", "updated", "sent"), ("patient", "updated", "sent")]
    mails = smtp.wait_for(4)
    [patient_update] = [m for m in mails if ".v1.patient.updated." in str(m["Message-ID"])]
    # The patient was registered in the new meeting: the update carries their new own link.
    assert new.registrant_join_url and new.registrant_join_url in body_text(patient_update)
    assert new.registrant_join_url != old.registrant_join_url and new.join_url not in body_text(patient_update)
