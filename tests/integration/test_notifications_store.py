"""Notification bookkeeping on SQLite and PostgreSQL: the migration matches the models,
each reminder and each webhook switch is decided once, alerts reach the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy

from telemed.store import appointments, inbox, notifications, outbox
from telemed.store.db import Database
from telemed.store.models import Appointment

pytestmark = pytest.mark.integration
MY_TABLES = ("start_link_audits", "reminders", "webhook_endpoints", "alerts")


def test_migration_matches_the_models(database: Database) -> None:
    inspector = sqlalchemy.inspect(database.engine)
    for table in MY_TABLES:
        migrated = {c["name"]: c["nullable"] for c in inspector.get_columns(table)}
        model = notifications.SQLModel.metadata.tables[table]
        assert migrated == {c.name: c.nullable for c in model.columns}, table
    uniques = inspector.get_unique_constraints("reminders")
    assert any(set(u["column_names"]) == {"appointment_id", "version", "role", "offset_seconds"} for u in uniques)


def test_webhook_is_disabled_once_and_can_be_enabled(database: Database) -> None:
    url = "https://booking.example/hooks"
    with database.session() as s:
        assert notifications.disable_webhook(s, url, "410 Gone") is True
    with database.session() as s:
        assert notifications.disable_webhook(s, url, "410 Gone") is False
        assert notifications.webhook_disabled(s, url)
        assert not notifications.webhook_disabled(s, url + "/v2")  # a new URL starts enabled
    with database.session() as s:
        assert notifications.enable_webhook(s, url) is True
    with database.session() as s:
        assert not notifications.webhook_disabled(s, url)


def test_each_reminder_is_decided_once(database: Database) -> None:
    key = dict(appointment_id="A-1", version=1, role="patient", offset_seconds=900)
    with database.session() as s:
        assert notifications.record_reminder(s, **key, status="queued", outbox_id=7)  # type: ignore[arg-type]
        assert not notifications.record_reminder(s, **key, status="skipped")  # type: ignore[arg-type]
        assert notifications.record_reminder(s, **{**key, "version": 2}, status="skipped")  # type: ignore[arg-type]
    with database.session() as s:
        assert notifications.decided_reminders(s, "A-1", 1) == {("patient", 900)}
        assert [r.status for r in notifications.reminders_for(s, "A-1")] == ["queued", "skipped"]


def test_an_alert_is_stored_and_owed_to_the_admin(database: Database) -> None:
    with database.session() as s:
        alert_id, outbox_id = notifications.queue_alert(s, "webhook_disabled", "Webhook\ndisabled", "body", None)
        second_id = notifications.record_alert(s, "notification_failed", "x" * 300, "b", "A-9")
    with database.session() as s:
        row = outbox.get_message(s, outbox_id)
        assert row is not None and (row.role, row.version, row.channel) == ("admin", alert_id, "mail")
        alert = notifications.get_alert(s, alert_id)
        assert alert is not None and alert.subject == "Webhook disabled"  # one line, for a header
        second = notifications.get_alert(s, second_id)
        assert second is not None and len(second.subject) == 200 and second.appointment_id == "A-9"
        assert [a.kind for a in notifications.alerts(s)] == ["webhook_disabled", "notification_failed"]


def test_disclosures_are_recorded_without_any_url(database: Database) -> None:
    with database.session() as s:
        notifications.record_disclosure(s, appointment_id="A-1", doctor_id="D-1", principal="doctor:D-1",
                                        via=notifications.VIA_START_LINK)
    with database.session() as s:
        [row] = notifications.disclosures(s, "A-1")
        assert (row.doctor_id, row.principal, row.via) == ("D-1", "doctor:D-1", "start_link")
        assert row.at <= datetime.now(UTC)
        assert set(row.model_dump()) == {"id", "appointment_id", "doctor_id", "principal", "via", "at"}


def _appointment(id: str, start: datetime | None, **overrides: object) -> Appointment:
    values: dict[str, object] = dict(
        id=id, version=1, desired="scheduled", state="provisioned", synced_version=1, timezone="Europe/Berlin",
        doctor_id="D-1", patient_id="P", patient_name="Pat", patient_email="pat@example.org",
        last_event_id=f"evt-{id}", start_time=start, duration_minutes=30,
    )
    values.update(overrides)
    return Appointment(**values)  # type: ignore[arg-type]


def test_reminder_candidates_are_live_synced_and_within_the_horizon(database: Database) -> None:
    now = datetime.now(UTC)
    with database.session() as s:
        appointments.upsert_doctor(s, id="D-1", name="Dr. One", email="one@clinic.example", zoom_user="one@clinic.example")
        inbox.record_event(s, event_id="evt-soon", type="appointment.booked", appointment_id="soon", version=1,
                           occurred_at=now, payload="{}")
        appointments.save(
            s,
            _appointment("soon", now + timedelta(hours=2)),
            _appointment("far", now + timedelta(days=3)),
            _appointment("past", now - timedelta(minutes=1)),
            _appointment("cancelled", now + timedelta(hours=1), desired="cancelled", state="cancelled"),
            _appointment("lagging", now + timedelta(hours=1), version=2),
            _appointment("attention", now + timedelta(hours=1), state="needs_attention"),
        )
    with database.session() as s:
        found = notifications.reminder_candidates(s, now, 86400)
    assert [a.id for a, _ in found] == ["soon"]
    assert abs((found[0][1] - now).total_seconds()) < 60  # when the current version was received
