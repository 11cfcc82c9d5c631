"""Migration 0009 (clinics), on SQLite and PostgreSQL: a database of 0008 keeps every row
and every key, all of them become the default clinic's, the appointment's old
``clinic_id`` (the event's label) moves to ``event_clinic_id``; scoped keys of other
clinics fit the widened columns; and the downgrade gives 0008's database back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from cryptography.fernet import Fernet

from telemed.foundation.cipher import Cipher
from telemed.foundation.tenancy import MAX_KEY_LENGTH, scoped
from telemed.store import api_keys, appointments, clinics
from telemed.store.db import Database
from telemed.store.migrate import alembic_config, current_revision, upgrade
from telemed.store.models import Appointment, Doctor, InboxEvent
from telemed.store.notifications import Alert
from telemed.store.status_view import appointment_status
from tests.conftest import REAL_DATABASE_URL
from tests.support.databases import fresh_database

pytestmark = pytest.mark.integration

BEFORE, CLINICS = "0008_registrants", "0009_clinics"
KEY = Fernet.generate_key().decode()
API_SECRET = "s" * 43  # the part of an API key after its prefix
WHEN = "2030-01-01 09:00:00"


@pytest.fixture(params=["sqlite", "postgresql"] if REAL_DATABASE_URL else ["sqlite"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of revision 0008 with one row in each table the migration changes."""
    with fresh_database(request.param, tmp_path, REAL_DATABASE_URL, revision=BEFORE) as url:
        _fill(url)
        yield url


def _fill(url: str) -> None:
    cipher = Cipher([KEY])
    rows = {
        "doctors": dict(id="D-1", name="Dr. One", email="d1@clinic.example", zoom_user="d1@clinic.example",
                        connection="account", updated_at=WHEN),
        "inbox_events": dict(event_id="evt-1", type="appointment.booked", appointment_id="A-1", version=1,
                             occurred_at=WHEN, received_at=WHEN, payload=cipher.encrypt("{}"), status="done"),
        "appointments": dict(id="A-1", version=1, desired="scheduled", state="provisioned", timezone="UTC",
                             doctor_id="D-1", patient_id="P-1", patient_name=cipher.encrypt("Canary Patient"),
                             patient_email=cipher.encrypt("p1@example.org"), clinic_id="C-1",
                             clinic_name="Northside", synced_version=1, last_event_id="evt-1", created_at=WHEN,
                             updated_at=WHEN),
        "alerts": dict(id=1, kind="zoom_quota", subject="quota", body="body", appointment_id="A-1", created_at=WHEN),
        "api_keys": dict(id=1, prefix="abcdefghij", key_hash=hashlib.sha256(API_SECRET.encode()).hexdigest(),
                         role="doctor:D-1", created_at=WHEN),
    }
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for table, values in rows.items():
            columns = ", ".join(values)
            marks = ", ".join(f":{name}" for name in values)
            conn.execute(sqlalchemy.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values)
    engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return {c["name"] for c in sqlalchemy.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_every_row_becomes_the_default_clinics_with_its_key(old_database: str) -> None:
    upgrade(old_database, CLINICS)
    assert current_revision(old_database) == CLINICS
    upgrade(old_database)  # and on to the head, whose tables the ORM reads
    database = Database(old_database, cipher=Cipher([KEY]))
    try:
        with database.session() as s:
            appointment = s.get(Appointment, "A-1")
            assert appointment is not None
            assert (appointment.clinic_id, appointment.event_clinic_id) == ("default", "C-1")
            assert appointment.patient_name == "Canary Patient"  # still decrypts
            doctor = s.get(Doctor, "D-1")
            assert doctor is not None and doctor.clinic_id == "default"
            event = s.get(InboxEvent, "evt-1")
            assert event is not None and event.clinic_id == "default" and event.appointment_id == "A-1"
            alert = s.get(Alert, 1)
            assert alert is not None and alert.clinic_id == "default"
            status = appointment_status(s, "A-1")
            assert status is not None and status.clinic_id == "default" and status.doctor_id == "D-1"
            # An API key of before: still valid, the default clinic's, its doctor the same.
            who = api_keys.authenticate(s, f"tmk_abcdefghij_{API_SECRET}")
            assert who is not None and (who.clinic_id, who.doctor_id, who.doctor_key) == ("default", "D-1", "D-1")
            assert clinics.list_clinics(s) == []
        # Another clinic's keys are longer than 0008's columns held: they fit now.
        long_id = "x" * 128
        clinic = "c" * 40
        key = scoped(clinic, long_id)
        assert len(key) == MAX_KEY_LENGTH
        with database.session() as s:
            clinics.add_clinic(s, clinic, "Long Clinic")
            appointments.upsert_doctor(s, id=key, name="Dr. Long", email="l@clinic.example",
                                       zoom_user="l@clinic.example", clinic_id=clinic)
        with database.session() as s:
            found = s.get(Doctor, key)
            assert found is not None and found.id == key
            s.delete(found)  # the downgrade narrows the columns again: no key of 169 may stay
            row = clinics.get_clinic(s, clinic)
            assert row is not None
            s.delete(row)
    finally:
        database.dispose()


def test_the_downgrade_gives_0008s_database_back(old_database: str) -> None:
    upgrade(old_database, CLINICS)
    command.downgrade(alembic_config(old_database), BEFORE)
    assert current_revision(old_database) == BEFORE
    for table in ("doctors", "inbox_events", "alerts", "api_keys"):
        assert "clinic_id" not in _columns(old_database, table), table
    assert "event_clinic_id" not in _columns(old_database, "appointments")
    engine = sqlalchemy.create_engine(old_database)
    try:
        with engine.connect() as conn:
            # The event's label is the appointment's clinic_id again, as 0008 had it.
            assert conn.execute(sqlalchemy.text("SELECT id, clinic_id FROM appointments")).all() == [("A-1", "C-1")]
            for table in ("doctors", "inbox_events", "alerts", "api_keys"):
                assert conn.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}")).scalar() == 1, table
            assert "clinics" not in sqlalchemy.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    upgrade(old_database, CLINICS)  # and up again
    assert current_revision(old_database) == CLINICS
