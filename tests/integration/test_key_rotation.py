"""``telemed keys rotate``: every encrypted column of every table ends under the newest key."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from telemed.foundation.cipher import Cipher
from telemed.store.db import Database
from telemed.store.models import Appointment, Doctor, InboxEvent, Meeting, utcnow
from telemed.store.operations import record_receipt
from telemed.store.rotation import encrypted_columns, rotate_all

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _seed(database: Database) -> None:
    now = utcnow()
    with database.session() as s:
        s.add(InboxEvent(event_id="e-1", type="appointment.booked", appointment_id="A-1", version=1,
                         occurred_at=now, payload='{"secret": "payload"}'))
        s.add(Doctor(id="D-1", name="Dr. Ada", email="ada@clinic.example", zoom_user="ada@clinic.example"))
        s.flush()
        s.add(Appointment(id="A-1", version=1, desired="scheduled", timezone="UTC", doctor_id="D-1",
                          patient_id="P-1", patient_name="Grace Hopper", patient_email="grace@example.org",
                          last_event_id="e-1"))
        s.flush()
        s.add(Meeting(appointment_id="A-1", zoom_meeting_id=1, host="ada@clinic.example",
                      join_url="https://zoom.us/j/1?pwd=secret", passcode="pass1", start_time=now + timedelta(days=1),
                      duration_minutes=30, timezone="UTC", synced_version=1))
        record_receipt(s, raw_body=b"{}", event="meeting.started", payload='{"host": "ada"}')


def _raw_values(database: Database) -> list[str]:
    values = []
    with database.engine.connect() as connection:
        for table, column in encrypted_columns():
            values += [v for (v,) in connection.execute(text(f'SELECT "{column}" FROM "{table.name}"')) if v]
    return values


def test_rotation_reencrypts_every_secret_and_is_idempotent(database_url: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = Database(database_url, cipher=Cipher([old]))
    _seed(database)
    before = _raw_values(database)
    assert len(before) >= 6
    report = rotate_all(database, [new, old], batch=2)  # small batches: paging is exercised
    assert report.total_rotated == len(before)
    assert {"inbox_events.payload", "appointments.patient_email", "meetings.join_url",
            "zoom_webhook_receipts.payload"} <= set(report.rotated)
    for token in _raw_values(database):
        Fernet(new.encode()).decrypt(token.encode())
        with pytest.raises(InvalidToken):
            Fernet(old.encode()).decrypt(token.encode())
    database.dispose()
    database = Database(database_url, cipher=Cipher([new]))  # the old key is gone: everything still reads
    with database.session() as s:
        meeting = s.get(Meeting, "A-1")
        appointment = s.get(Appointment, "A-1")
        assert meeting is not None and meeting.join_url == "https://zoom.us/j/1?pwd=secret"
        assert appointment is not None and appointment.patient_email == "grace@example.org"
    again = rotate_all(database, [new, old])
    database.dispose()
    assert again.total_rotated == 0 and sum(again.current.values()) == len(before)


def test_rotate_command(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = Database(database_url, cipher=Cipher([old]))
    _seed(database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update({"TELEMED_DATABASE_URL": database_url, "TELEMED_SECRET_KEYS": f"{new},{old}",
                "TELEMED_DATA_DIR": str(tmp_path), "PYTHONPATH": REPO, "TELEMED_LOG_FORMAT": "json"})
    result = subprocess.run([sys.executable, "-m", "telemed", "keys", "rotate"], env=env, cwd=tmp_path,
                            capture_output=True, timeout=60)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "meetings.join_url: 1 re-encrypted" in out and "older keys can be removed" in out
    # Without the key the values were written under, the command names what it cannot read.
    env["TELEMED_SECRET_KEYS"] = Fernet.generate_key().decode()
    failed = subprocess.run([sys.executable, "-m", "telemed", "keys", "rotate"], env=env, cwd=tmp_path,
                            capture_output=True, timeout=60)
    assert failed.returncode == 1 and "not encrypted under any configured key" in failed.stderr.decode()
    assert "Traceback" not in failed.stderr.decode()
    database.dispose()
