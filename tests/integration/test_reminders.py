"""Reminders on real processes: the scheduler queues each one once through the outbox,
a doctor without signed links gets a fresh start link in theirs, and a moved or cancelled
appointment gets no stale reminder."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from telemed.settings import load_settings
from telemed.store import appointments, notifications, outbox
from telemed.store.models import Appointment, Meeting
from telemed.workers.delivery.relay import deliver_notification
from tests.support import notify_run
from tests.support.contexts import cipher_database, worker_context
from tests.support.mail_scan import calendars, everything
from tests.support.notify_run import Run, by_message_id, canary_scan

pytestmark = pytest.mark.integration
LEAD = 62  # seconds from booking to start: the "1m" reminder falls due 2 s after booking


@pytest.fixture
def run_factory(backend, zoom_sim, smtp, tmp_path, redis_namespace):  # type: ignore[no-untyped-def]
    yield from notify_run.run_factory(backend, zoom_sim, smtp, tmp_path, redis_namespace)


def _scheduler_pass(run: Run) -> None:
    done = run.pipeline.run_cli("scheduler", "--once")
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_reminders_go_once_each_and_never_for_a_moved_appointment(run_factory) -> None:  # type: ignore[no-untyped-def]
    run: Run = run_factory(public_url=False, webhook=False, TELEMED_REMINDER_OFFSETS="24h,1m")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD)
    run.publish("M-1", 1, start)
    run.publish("M-2", 1, start)
    run.pipeline.wait_settled()
    run.publish("M-2", 2, start + timedelta(days=3), type="appointment.rescheduled")  # moved before its reminder
    run.pipeline.wait_settled()
    time.sleep(max(0.0, (start - timedelta(seconds=60) - datetime.now(UTC)).total_seconds()) + 0.5)

    _scheduler_pass(run)
    run.pipeline.wait_settled()
    _scheduler_pass(run)  # a second pass decides nothing new
    run.pipeline.wait_settled()

    reminders = [m for m in run.pipeline.outbox() if m.kind.startswith("reminder")]
    assert sorted((m.appointment_id, m.role, m.kind, m.status) for m in reminders) == [
        ("M-1", "doctor", "reminder-1m", "sent"), ("M-1", "patient", "reminder-1m", "sent")]
    with run.pipeline.database.session() as s:
        decided = sorted((r.role, r.offset_seconds, r.status) for r in notifications.reminders_for(s, "M-1"))
        assert notifications.reminders_for(s, "M-2") == []  # v2 is days away; v1 is history
    # The 24h reminder was skipped: the booking came after its moment, the invite said it all.
    assert decided == [("doctor", 60, "queued"), ("doctor", 86400, "skipped"),
                       ("patient", 60, "queued"), ("patient", 86400, "skipped")]

    messages = run.smtp.messages
    [patient_reminder] = by_message_id(messages, "M-1.v1.patient.reminder-1m")
    [doctor_reminder] = by_message_id(messages, "M-1.v1.doctor.reminder-1m")
    [doctor_invite] = by_message_id(messages, "M-1.v1.doctor.invite")
    assert str(patient_reminder["Subject"]).startswith("Reminder")
    assert "zoom.us/w/" in everything(patient_reminder) and not calendars(patient_reminder)  # their own link
    # Without signed links the doctor's reminder brings a start_url minted just now.
    fresh = [w for w in everything(doctor_reminder).split() if "zak=" in w]
    earlier = [w for w in everything(doctor_invite).split() if "zak=" in w]
    assert fresh and earlier and set(fresh).isdisjoint(earlier)
    canary_scan(run, signed_links=False)


def test_a_queued_reminder_overtaken_by_a_move_or_a_cancel_is_superseded(
    database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    settings = load_settings(redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url,
                             secret_keys=key, data_dir=tmp_path, mail_dir=tmp_path / "mail")
    database = cipher_database(database_url, [key])
    ctx = worker_context(settings, database)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with database.session() as s:
        appointments.upsert_doctor(s, id="D-1", name="Dr. One", email="one@clinic.example",
                                   zoom_user="one@clinic.example")
        appointments.save(s, Appointment(
            id="Q-1", version=1, desired="scheduled", state="provisioned", synced_version=1,
            timezone="Europe/Berlin", doctor_id="D-1", patient_id="P", patient_name="Pat Q",
            patient_email="pat.q@example.org", last_event_id="e1", start_time=start, duration_minutes=30))
        appointments.save(s, Meeting(appointment_id="Q-1", zoom_meeting_id=123456789, host="one@clinic.example",
                                     join_url="https://zoom.us/j/123456789?pwd=x", passcode="abc",
                                     start_time=start, duration_minutes=30, timezone="Europe/Berlin",
                                     synced_version=1))
        first = outbox.add_message(s, appointment_id="Q-1", version=1, role="patient", kind="reminder-15m")
        s.flush()
        assert first is not None and first.id is not None
        first_id = first.id
    with database.session() as s:  # moved after the reminder was queued
        appointment = appointments.get_appointment(s, "Q-1")
        assert appointment is not None
        appointment.version, appointment.start_time = 2, start + timedelta(days=1)
        appointments.save(s, appointment)
        second = outbox.add_message(s, appointment_id="Q-1", version=2, role="patient", kind="reminder-15m")
        s.flush()
        assert second is not None and second.id is not None
        second_id = second.id
    assert deliver_notification(ctx, first_id).status == "superseded"
    with database.session() as s:  # then cancelled
        appointment = appointments.get_appointment(s, "Q-1")
        assert appointment is not None
        appointment.desired = "cancelled"
        appointments.save(s, appointment)
    assert deliver_notification(ctx, second_id).status == "superseded"
    with database.session() as s:
        rows = {m.id: m for m in outbox.messages_for(s, "Q-1")}
    assert rows[first_id].status == "superseded" and "moved" in (rows[first_id].last_error or "")
    assert rows[second_id].status == "superseded" and "cancelled" in (rows[second_id].last_error or "")
    assert not (tmp_path / "mail").exists() or not any((tmp_path / "mail").iterdir())
    database.dispose()
    ctx.redis.close()


def test_reminder_offsets_are_validated_at_startup() -> None:
    from telemed.settings import SettingsError

    with pytest.raises(SettingsError, match="TELEMED_REMINDER_OFFSETS"):
        load_settings(reminder_offsets="tomorrow")


