"""Notices to build tests on: a patient's and a doctor's, with a join and a start link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telemed.workers.notifier.messages import DoctorNotice, MeetingTime, NoticeKind, PatientNotice

JOIN = "https://us02web.zoom.us/j/85012345678?pwd=Q2x1c3RlcjE"
START = "https://us02web.zoom.us/s/85012345678?zak=eyJ0eXAiOiJKV1QiLCJzdiI6IjAwMDAwMSJ9.abc"
TIME = MeetingTime(datetime(2026, 12, 3, 8, 30, tzinfo=UTC), 30, "Europe/Berlin")


def patient(**changes: Any) -> PatientNotice:
    values: dict[str, Any] = {
        "kind": NoticeKind.INVITE,
        "appointment_id": "A-1001",
        "version": 1,
        "patient_name": "Grace Hopper",
        "patient_email": "grace@example.org",
        "doctor_name": "Dr. Ada Lovelace",
        "clinic_name": "Northside Clinic",
        "time": TIME,
        "join_url": JOIN,
        "passcode": "Xy12ab",
    }
    values.update(changes)
    return PatientNotice(**values)


def doctor(**changes: Any) -> DoctorNotice:
    values: dict[str, Any] = {
        "kind": NoticeKind.INVITE,
        "appointment_id": "A-1001",
        "version": 1,
        "doctor_name": "Dr. Ada Lovelace",
        "doctor_email": "ada@clinic.example",
        "patient_name": "Grace Hopper",
        "clinic_name": "Northside Clinic",
        "time": TIME,
        "start_url": START,
        "join_url": JOIN,
    }
    values.update(changes)
    return DoctorNotice(**values)
