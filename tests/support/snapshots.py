"""A relay snapshot (one outbox row with its appointment) to build delivery tests on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telemed.workers.delivery.snapshot import Snapshot
from tests.support.notices import JOIN

START = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


def snapshot(**changes: Any) -> Snapshot:
    values: dict[str, Any] = dict(
        outbox_id=1, role="patient", kind="invite", channel="mail", version=1, appointment_id="A-1001",
        current_version=1, desired="scheduled", state="provisioned", doctor_id="D-7",
        patient_name="Grace Hopper", patient_email="grace@example.org", doctor_name="Dr. Ada Lovelace",
        doctor_email="ada@clinic.example", clinic_name="Northside Clinic", timezone="Europe/Berlin",
        start_time=START, duration_minutes=30, zoom_meeting_id=85012345678, join_url=JOIN, passcode="Xy12ab",
    )
    values.update(changes)
    return Snapshot(**values)
