"""The blind patient index in the store: kept on every write, filled for old rows, moved
to the newest key by ``telemed keys rotate``, added by migration 0010 without losing a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import text

from telemed.foundation.cipher import Cipher
from telemed.store import appointment_list, patient_index, patient_search
from telemed.store.db import Database
from telemed.store.migrate import alembic_config, upgrade
from telemed.store.models import Appointment, Doctor
from telemed.store.rotation import rotate_all

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def _seed(database: Database, patients: dict[str, tuple[str, str]], clinic: str = "default") -> None:
    with database.session() as s:
        s.add(Doctor(id=f"{clinic}-D", clinic_id=clinic, name="Dr. Ada", email="ada@clinic.example",
                     zoom_user="ada@clinic.example"))
        s.flush()
        for n, (appointment_id, (name, email)) in enumerate(patients.items()):
            s.add(Appointment(id=appointment_id, clinic_id=clinic, version=1, desired="scheduled", timezone="UTC",
                              doctor_id=f"{clinic}-D", patient_id=f"P-{n}", patient_name=name, patient_email=email,
                              last_event_id=f"e-{n}", start_time=NOW + timedelta(days=1, hours=n)))


def _found(database: Database, query: str, clinic: str = "default") -> list[str]:
    with database.session() as s:
        page = appointment_list.appointment_page(s, clinic, now=NOW, when=appointment_list.ALL,
                                                 search=appointment_list.criteria(patient=query))
    return sorted(r.id for r in page.rows)


def _indexes(database: Database) -> dict[str, str | None]:
    with database.engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, patient_index FROM appointments")).all())  # type: ignore[arg-type]


def test_every_write_keeps_the_index_and_old_rows_are_filled(database: Database) -> None:
    _seed(database, {"A-1": ("Grace Hopper", "grace@example.org"), "A-2": ("Ada King", "ada@example.org")})
    assert _found(database, "grace") == ["A-1"] and _found(database, "ADA@example.org") == ["A-2"]
    with database.session() as s:
        row = s.get(Appointment, "A-1")
        assert row is not None
        row.patient_name = "Hedy Lamarr"
        s.add(row)
    assert _found(database, "grace") == [] and _found(database, "lamarr hedy") == ["A-1"]
    with database.engine.begin() as connection:  # as after migration 0010, or a write in plain SQL
        connection.execute(text("UPDATE appointments SET patient_index = NULL"))
    assert _found(database, "lamarr") == []
    assert database.cipher is not None
    assert patient_search.reindex(database, database.cipher, clinic_id="default", batch=1) == 2
    assert _found(database, "lamarr") == ["A-1"] and _found(database, "king") == ["A-2"]
    assert patient_search.reindex(database, database.cipher) == 0  # nothing left to do


def test_rotation_moves_the_index_to_the_newest_key(database_url: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = Database(database_url, cipher=Cipher([old]))
    _seed(database, {f"A-{n}": (f"Patient Number{n}", f"p{n}@example.org") for n in range(5)})
    report = rotate_all(database, [new, old], batch=2)
    database.dispose()
    assert report.reindexed == 5
    newest = patient_index.key_tag(patient_index.index_keys(Cipher([new]))[0])
    database = Database(database_url, cipher=Cipher([new]))  # the old key is gone: patients are still found
    assert all(value and value.startswith(f"k:{newest} ") for value in _indexes(database).values())
    assert _found(database, "number3") == ["A-3"] and _found(database, "P4@example.org") == ["A-4"]
    assert rotate_all(database, [new]).reindexed == 0
    database.dispose()


def test_a_search_during_a_rotation_finds_rows_under_either_key(database_url: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = Database(database_url, cipher=Cipher([old]))
    _seed(first, {"A-1": ("Grace Hopper", "grace@example.org")})
    first.dispose()
    both = Database(database_url, cipher=Cipher([new, old]))  # the new key is first; nothing re-indexed yet
    assert _found(both, "hopper") == ["A-1"]
    both.dispose()


def test_migration_0010_keeps_every_row_and_goes_back(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0009_clinics")
    cipher = Cipher([Fernet.generate_key().decode()])
    with Database(database_url, cipher=cipher).engine.begin() as connection:
        connection.execute(text("INSERT INTO doctors (id, clinic_id, name, email, zoom_user, connection, updated_at) "
                                "VALUES ('D-1', 'default', 'Dr. Ada', 'a@x.example', 'a@x.example', 'none', "
                                ":now)"), {"now": NOW.replace(tzinfo=None)})
        connection.execute(text(
            "INSERT INTO appointments (id, version, desired, state, timezone, doctor_id, patient_id, patient_name, "
            "patient_email, clinic_id, synced_version, last_event_id, created_at, updated_at, start_time) VALUES "
            "('A-1', 1, 'scheduled', 'pending', 'UTC', 'D-1', 'P-1', :name, :email, 'default', 0, 'e-1', :now, :now, "
            ":now)"), {"name": cipher.encrypt("Grace Hopper"), "email": cipher.encrypt("grace@example.org"),
                      "now": NOW.replace(tzinfo=None)})
    upgrade(database_url)
    database = Database(database_url, cipher=cipher)
    assert _indexes(database) == {"A-1": None}
    assert _found(database, "grace") == []  # not indexed yet: the admin page indexes before it searches
    patient_search.reindex(database, cipher, clinic_id="default")
    assert _found(database, "grace") == ["A-1"]
    database.dispose()
    command.downgrade(config, "0009_clinics")
    with Database(database_url, cipher=cipher).engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM appointments")).scalars().all() == ["A-1"]
    upgrade(database_url)
