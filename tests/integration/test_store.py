"""The store on SQLite and PostgreSQL: migrations, idempotent inbox, encryption at rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from cryptography.fernet import Fernet

from telemed.foundation.cipher import Cipher, DecryptionError
from telemed.store import appointments, attention, inbox, intents, outbox, states, status_view
from telemed.store.db import Database
from telemed.store.migrate import current_revision
from telemed.store.models import ATTENTION_REASON_MAX_LENGTH, Appointment, Meeting

pytestmark = pytest.mark.integration
CANARY_EMAIL = "canary.patient.7731@example.org"
CANARY_JOIN = "https://zoom.us/j/98765432101?pwd=CanaryPwd42"


def _appointment(**overrides: object) -> Appointment:
    fields: dict[str, object] = dict(
        id="A-1", version=1, desired="scheduled", timezone="Europe/Berlin", doctor_id="D-1",
        patient_id="P-1", patient_name="Canary Patient", patient_email=CANARY_EMAIL,
        last_event_id="e1", start_time=datetime(2026, 12, 3, 8, 30, tzinfo=UTC), duration_minutes=30,
    )
    fields.update(overrides)
    return Appointment(**fields)  # type: ignore[arg-type]


def test_migrations_reach_head(database_url: str) -> None:
    assert current_revision(database_url) is not None


def test_inbox_is_idempotent_on_event_id(database: Database) -> None:
    args = dict(event_id="e1", type="appointment.booked", appointment_id="A-1", version=1,
                occurred_at=datetime.now(UTC), payload="{}")
    with database.session() as s:
        assert inbox.record_event(s, **args) is True  # type: ignore[arg-type]
    with database.session() as s:
        assert inbox.record_event(s, **args) is False  # type: ignore[arg-type]
        assert len(inbox.events_for(s, "A-1")) == 1


def test_secrets_are_encrypted_at_rest_and_ids_are_64_bit(database: Database) -> None:
    with database.session() as s:
        appointments.upsert_doctor(s, id="D-1", name="Dr. X", email="x@clinic.example", zoom_user="x@clinic.example")
        s.flush()
        s.add(_appointment())
        s.flush()
        s.add(Meeting(appointment_id="A-1", zoom_meeting_id=2**40 + 7, host="x@clinic.example", join_url=CANARY_JOIN,
                      passcode="Cn4ry9", start_time=datetime(2026, 12, 3, 8, 30, tzinfo=UTC), duration_minutes=30,
                      timezone="Europe/Berlin", synced_version=1))
    with database.engine.connect() as conn:
        raw = " ".join(
            str(row) for table in ("appointments", "meetings")
            for row in conn.execute(sqlalchemy.text(f"select * from {table}"))
        )
    for secret in (CANARY_EMAIL, CANARY_JOIN, "Cn4ry9", "Canary Patient"):
        assert secret not in raw
    with database.session() as s:
        meeting = appointments.get_meeting(s, "A-1")
        assert meeting is not None and meeting.join_url == CANARY_JOIN and meeting.zoom_meeting_id == 2**40 + 7
        assert meeting.start_time.tzinfo is not None


def test_key_rotation_reads_old_values() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Cipher([old]).encrypt("secret")
    rotated = Cipher([new, old])
    assert rotated.decrypt(token) == "secret"
    assert Cipher([new]).decrypt(rotated.rotate(token)) == "secret"
    with pytest.raises(DecryptionError) as caught:
        Cipher([new]).decrypt(token)
    assert "secret" not in str(caught.value)


def test_one_open_intent_per_appointment(database: Database) -> None:
    with database.session() as s:
        first, fresh = intents.begin_intent(s, appointment_id="A-1", marker="m", host="h")
        assert fresh
    with database.session() as s:
        again, fresh = intents.begin_intent(s, appointment_id="A-1", marker="m", host="h")
        assert not fresh and again.id == first.id and again.attempts == 2
        intents.close_intent(s, again)
    with database.session() as s:
        _, fresh = intents.begin_intent(s, appointment_id="A-1", marker="m", host="h")
        assert fresh
        stale = intents.stale_open_intents(s, datetime.now(UTC) + timedelta(seconds=1))
        assert [i.appointment_id for i in stale] == ["A-1"]


def test_outbox_is_unique_per_appointment_version_role_kind(database: Database) -> None:
    with database.session() as s:
        assert outbox.add_message(s, appointment_id="A-1", version=1, role="patient", kind="invite") is not None
        assert outbox.add_message(s, appointment_id="A-1", version=1, role="patient", kind="invite") is None
        assert outbox.add_message(s, appointment_id="A-1", version=1, role="doctor", kind="invite") is not None
        assert outbox.add_message(s, appointment_id="A-1", version=2, role="patient", kind="updated") is not None
    with database.session() as s:
        assert len(outbox.messages_for(s, "A-1")) == 3


def test_needs_attention_cuts_the_reason_to_the_column_and_says_whether_it_changed(database: Database) -> None:
    long_reason = "x" * (ATTENTION_REASON_MAX_LENGTH + 50)
    with database.session() as s:
        appointments.upsert_doctor(s, id="D-1", name="Dr. X", email="x@clinic.example", zoom_user="x@clinic.example")
        s.flush()
        s.add(_appointment())
        s.flush()
    for expected_change in (True, False):  # a retried park for the same reason owes no second alert
        with database.session() as s:
            row = appointments.get_appointment(s, "A-1", for_update=True)
            assert row is not None
            assert attention.mark_needs_attention(s, row, long_reason) is expected_change
    with database.session() as s:
        row = appointments.get_appointment(s, "A-1", for_update=True)
        assert row is not None
        assert (row.state, row.attention_reason) == (states.NEEDS_ATTENTION, "x" * ATTENTION_REASON_MAX_LENGTH)
        assert attention.mark_needs_attention(s, row, "another reason") is True


def test_one_status_read_model_for_cli_api_and_admin_page(database: Database) -> None:
    with database.session() as s:
        appointments.upsert_doctor(s, id="D-1", name="Dr. X", email="x@clinic.example", zoom_user="x@clinic.example")
        s.flush()
        s.add(_appointment())
        s.add(_appointment(id="A-2", last_event_id="e2"))
        s.flush()
        s.add(Meeting(appointment_id="A-1", zoom_meeting_id=4242, host="x@clinic.example", join_url=CANARY_JOIN,
                      passcode="Cn4ry9", start_time=datetime(2026, 12, 3, 8, 30, tzinfo=UTC), duration_minutes=30,
                      timezone="Europe/Berlin", synced_version=1, deleted_at=datetime(2026, 12, 1, tzinfo=UTC)))
        outbox.add_message(s, appointment_id="A-1", version=1, role="patient", kind="invite")
        outbox.add_message(s, appointment_id="A-1", version=1, role="booking", kind="started", channel="webhook")
    with database.session() as s:
        status = status_view.appointment_status(s, "A-1")
        listed = {row.id: row for row in status_view.recent_appointment_statuses(s)}
        assert status_view.appointment_status(s, "nope") is None
    assert status is not None
    # A meeting deleted in Zoom: its id is still known (the CLI shows it as deleted), it is not live
    # (the API's meeting_live), and the admin page's "Zoom meeting" column shows only a live one.
    assert (status.zoom_meeting_id, status.meeting_live, status.live_zoom_meeting_id) == (4242, False, None)
    assert [(n.role, n.kind, n.channel, n.status) for n in status.notices] == [
        ("patient", "invite", "mail", "pending"), ("booking", "started", "webhook", "pending")]
    assert set(listed) == {"A-1", "A-2"} and listed["A-1"].notices == ()
    assert listed["A-2"].zoom_meeting_id is None and not listed["A-2"].meeting_live
    assert "Canary" not in repr(status) and CANARY_EMAIL not in repr(status)
