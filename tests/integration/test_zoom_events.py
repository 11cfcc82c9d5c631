"""``process_zoom_webhook``'s handler on the real store: states, webhooks, policy, deauthorization."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.settings import load_settings
from telemed.store import notifications, operations, states
from telemed.store.db import Database
from telemed.store.models import Appointment, Doctor, Meeting, OutboxMessage, utcnow
from telemed.workers.context import WorkerContext
from telemed.workers.meetings.zoom_events import handle_zoom_webhook
from tests.support.contexts import worker_context

pytestmark = pytest.mark.integration
ZOOM_ID = 90000000001


def _context(database: Database, **settings: object) -> WorkerContext:
    return worker_context(load_settings(secret_keys=Fernet.generate_key().decode(), **settings),  # type: ignore[arg-type]
                          database)


def _seed(database: Database, *, desired: str = states.SCHEDULED, starts_in: timedelta = timedelta(days=1)) -> None:
    start = utcnow().replace(microsecond=0) + starts_in
    with database.session() as s:
        s.add(Doctor(id="D-1", name="Dr. Ada", email="ada@clinic.example", zoom_user="ada@clinic.example"))
        s.flush()
        s.add(Appointment(id="A-1", version=1, desired=desired, state=states.PROVISIONED, start_time=start,
                          duration_minutes=30, timezone="Europe/Berlin", doctor_id="D-1", patient_id="P-1",
                          patient_name="Grace", patient_email="grace@example.org", synced_version=1,
                          last_event_id="evt-1"))
        s.flush()
        s.add(Meeting(appointment_id="A-1", zoom_meeting_id=ZOOM_ID, host="ada@clinic.example",
                      join_url="https://zoom.us/j/1?pwd=x", passcode="abc", start_time=start,
                      duration_minutes=30, timezone="Europe/Berlin", synced_version=1))


def _receive(database: Database, event: str, payload: dict) -> int:  # type: ignore[type-arg]
    body = json.dumps({"event": event, "event_ts": utcnow().timestamp(), "payload": payload}).encode()
    with database.session() as s:
        receipt, _ = operations.record_receipt(s, raw_body=body, event=event, payload=body.decode())
        assert receipt.id is not None
        return receipt.id


def _meeting(event: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    return event, {"account_id": "acc", "object": {"id": str(ZOOM_ID), "host_id": "zu-1"}}


def _appointment(database: Database) -> Appointment:
    with database.session() as s:
        found = s.get(Appointment, "A-1")
        assert found is not None
        return found


def test_started_then_ended_tell_the_booking_webhook_once(database: Database) -> None:
    _seed(database)
    ctx = _context(database, webhook_url="https://booking.example/hook", webhook_secret="s")
    started = handle_zoom_webhook(ctx, _receive(database, *_meeting("meeting.started")))
    assert _appointment(database).state == states.IN_PROGRESS
    assert handle_zoom_webhook(ctx, _receive(database, *_meeting("meeting.ended"))).notifications
    assert _appointment(database).state == states.COMPLETED
    # The same receipt handled again (a redelivered message) changes nothing.
    again = handle_zoom_webhook(ctx, 1)
    assert again.outcome == "already handled" and again.notifications == []
    with database.session() as s:
        rows = list(s.exec(select(OutboxMessage)))
    assert sorted((m.role, m.kind, m.channel) for m in rows) == [("booking", "ended", "webhook"),
                                                                   ("booking", "started", "webhook")]
    assert started.notifications == [m.id for m in rows if m.kind == "started"]


def test_without_a_booking_webhook_no_outbox_rows(database: Database) -> None:
    _seed(database)
    follow_up = handle_zoom_webhook(_context(database), _receive(database, *_meeting("meeting.started")))
    assert follow_up.notifications == [] and _appointment(database).state == states.IN_PROGRESS


def test_deleted_in_zoom_reprovisions_by_default(database: Database) -> None:
    _seed(database)
    follow_up = handle_zoom_webhook(_context(database), _receive(database, *_meeting("meeting.deleted")))
    assert follow_up.sync == ["A-1"]
    assert _appointment(database).state == states.PENDING
    with database.session() as s:
        assert s.get(Meeting, "A-1").deleted_at is not None  # type: ignore[union-attr]
        # Should the sync message be lost, the reconciler finds the appointment again.
        assert operations.drifted_appointment_ids(s, utcnow() + timedelta(seconds=1)) == ["A-1"]


def test_deleted_in_zoom_with_attention_policy_alerts_the_admin(database: Database) -> None:
    _seed(database)
    ctx = _context(database, zoom_meeting_deleted_policy="attention")
    follow_up = handle_zoom_webhook(ctx, _receive(database, *_meeting("meeting.deleted")))
    appointment = _appointment(database)
    assert appointment.state == states.NEEDS_ATTENTION and "deleted in Zoom" in (appointment.attention_reason or "")
    with database.session() as s:
        [alert] = notifications.alerts(s, "meeting_deleted")
        [admin_mail] = [m for m in s.exec(select(OutboxMessage)) if m.role == "admin"]
        assert alert.appointment_id == "A-1" and follow_up.notifications == [admin_mail.id]
        assert operations.drifted_appointment_ids(s, utcnow() + timedelta(seconds=1)) == []


def test_our_own_delete_of_a_cancelled_appointment_is_ignored(database: Database) -> None:
    _seed(database, desired=states.CANCELLED)
    follow_up = handle_zoom_webhook(_context(database), _receive(database, *_meeting("meeting.deleted")))
    assert follow_up.sync == [] and follow_up.outcome.startswith("ignored")
    with database.session() as s:
        [receipt] = s.exec(select(operations.ZoomWebhookReceipt)).all()
        assert receipt.status == operations.RECEIPT_IGNORED


def test_deleted_after_the_appointment_is_not_recreated(database: Database) -> None:
    _seed(database, starts_in=timedelta(hours=-2))
    follow_up = handle_zoom_webhook(_context(database), _receive(database, *_meeting("meeting.deleted")))
    assert follow_up.sync == [] and _appointment(database).state == states.PROVISIONED


def test_unknown_meeting_is_ignored(database: Database) -> None:
    _seed(database)
    payload = {"object": {"id": "123", "host_id": "x"}}
    follow_up = handle_zoom_webhook(_context(database), _receive(database, "meeting.started", payload))
    assert follow_up.outcome.startswith("ignored") and _appointment(database).state == states.PROVISIONED


def test_app_deauthorized_marks_the_doctor_needs_reconnect(database: Database) -> None:
    _seed(database)
    payload = {"account_id": "acc", "user_id": "ada@clinic.example", "client_id": "c",
               "deauthorization_time": "2026-12-01T08:00:00Z", "signature": "x"}
    follow_up = handle_zoom_webhook(_context(database), _receive(database, "app_deauthorized", payload))
    with database.session() as s:
        assert s.get(Doctor, "D-1").connection == states.NEEDS_RECONNECT  # type: ignore[union-attr]
        assert len(notifications.alerts(s, "zoom_deauthorized")) == 1
    assert len(follow_up.notifications) == 1
