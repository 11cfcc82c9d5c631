"""One clinic's appointments for its admin page: by start time, searched, a page at a time.

Every query is bounded by ``appointments.clinic_id``: nothing of another clinic is read,
counted or paged over. Ids come back as the clinic's own (foundation.tenancy.external_id).

Order is total, so paging is stable: upcoming appointments soonest first, past ones (and
"all") latest first, ties broken by id. A search matches on any of the filled-in fields
together (AND): the appointment id (a prefix of it), the doctor (their id, or a part of
their name, case ignored) and the patient (their id, their whole e-mail address, or
whole words of their name: store.patient_search).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import Session, col

from telemed.foundation.shown_ids import own_text
from telemed.foundation.tenancy import SEPARATOR, external_id, scoped
from telemed.store import patient_search
from telemed.store.models import Appointment, Doctor, Meeting
from telemed.store.types import dialect_cipher

PAGE_SIZE = 50
UPCOMING, PAST, ALL = "upcoming", "past", "all"
WHENS = (UPCOMING, PAST, ALL)
# An appointment under way stays among the upcoming ones for this long after it starts.
IN_PROGRESS = timedelta(hours=1)
MAX_LENGTHS = {"appointment": 128, "doctor": 200, "patient": 320}


class InvalidSearch(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass(frozen=True)
class Criteria:
    """What the admin searched for; empty strings are not searched."""

    appointment: str = ""
    doctor: str = ""
    patient: str = ""

    @property
    def empty(self) -> bool:
        return not (self.appointment or self.doctor or self.patient)


def criteria(*, appointment: str = "", doctor: str = "", patient: str = "") -> Criteria:
    """Checked search fields (trimmed); raises :class:`InvalidSearch` naming the field."""
    values = {"appointment": appointment.strip(), "doctor": doctor.strip(), "patient": patient.strip()}
    for field, value in values.items():
        if len(value) > MAX_LENGTHS[field]:
            raise InvalidSearch(field, f"at most {MAX_LENGTHS[field]} characters")
        if any(not c.isprintable() for c in value):
            raise InvalidSearch(field, "only printable characters")
    if SEPARATOR in values["appointment"]:
        raise InvalidSearch("appointment", f"an appointment id has no {SEPARATOR!r}")
    return Criteria(**values)


@dataclass(frozen=True)
class ListedAppointment:
    id: str  # the clinic's own id
    start_time: datetime | None
    duration_minutes: int | None
    timezone: str
    state: str
    desired: str
    version: int
    synced_version: int
    doctor_id: str  # the clinic's own id
    doctor_name: str
    patient_name: str
    zoom_meeting_id: int | None  # the live meeting, if any
    attention_reason: str | None


@dataclass(frozen=True)
class AppointmentPage:
    rows: list[ListedAppointment]
    total: int
    page: int
    page_size: int
    when: str

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first_number(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last_number(self) -> int:
        return (self.page - 1) * self.page_size + len(self.rows)


def _filters(session: Session, clinic_id: str, when: str, search: Criteria, now: datetime) -> list[ColumnElement[bool]]:
    start = col(Appointment.start_time)
    filters: list[ColumnElement[bool]] = [col(Appointment.clinic_id) == clinic_id]
    cut = now - IN_PROGRESS
    if when == UPCOMING:
        filters.append(start >= cut)
    elif when == PAST:
        filters.append(or_(start < cut, start.is_(None)))
    if search.appointment:
        prefix = scoped(clinic_id, search.appointment)
        filters.append(func.substr(col(Appointment.id), 1, len(prefix)) == prefix)
    if search.doctor:
        by_name = func.lower(col(Doctor.name)).contains(search.doctor.lower(), autoescape=True)
        if SEPARATOR in search.doctor:
            filters.append(by_name)
        else:
            filters.append(or_(col(Appointment.doctor_id) == scoped(clinic_id, search.doctor), by_name))
    if search.patient:
        cipher = dialect_cipher(session.get_bind().dialect)
        filters.append(or_(col(Appointment.patient_id) == search.patient,
                           patient_search.matches(cipher, search.patient)))
    return filters


def _order(when: str) -> list[Any]:
    start, key = col(Appointment.start_time), col(Appointment.id)
    if when == UPCOMING:
        return [start.asc(), key.asc()]
    return [start.is_(None).asc(), start.desc(), key.desc()]  # no start time: last


def appointment_page(session: Session, clinic_id: str, *, now: datetime, when: str = UPCOMING,
                     search: Criteria | None = None, page: int = 1, page_size: int = PAGE_SIZE) -> AppointmentPage:
    """Page ``page`` (from 1; past the end: the last page) of the clinic's appointments."""
    if when not in WHENS:
        raise InvalidSearch("when", f"one of {', '.join(WHENS)}")
    filters = _filters(session, clinic_id, when, search or Criteria(), now)
    joined = select(func.count()).select_from(Appointment).join(Doctor, col(Doctor.id) == col(Appointment.doctor_id))
    total = int(session.execute(joined.where(*filters)).scalar_one())
    page = max(1, min(page, max(1, math.ceil(total / page_size))))
    statement = (
        select(col(Appointment.id), col(Appointment.start_time), col(Appointment.duration_minutes),
               col(Appointment.timezone), col(Appointment.state), col(Appointment.desired),
               col(Appointment.version), col(Appointment.synced_version), col(Appointment.doctor_id),
               col(Doctor.name), col(Appointment.patient_name), col(Meeting.zoom_meeting_id),
               col(Meeting.deleted_at), col(Appointment.attention_reason))
        .join(Doctor, col(Doctor.id) == col(Appointment.doctor_id))
        .join(Meeting, col(Meeting.appointment_id) == col(Appointment.id), isouter=True)
        .where(*filters).order_by(*_order(when)).offset((page - 1) * page_size).limit(page_size)
    )
    rows = [
        ListedAppointment(
            id=external_id(r.id), start_time=r.start_time, duration_minutes=r.duration_minutes, timezone=r.timezone,
            state=r.state, desired=r.desired, version=r.version, synced_version=r.synced_version,
            doctor_id=external_id(r.doctor_id), doctor_name=r.name, patient_name=r.patient_name,
            zoom_meeting_id=r.zoom_meeting_id if r.zoom_meeting_id is not None and r.deleted_at is None else None,
            attention_reason=None if r.attention_reason is None else own_text(r.attention_reason, clinic_id),
        )
        for r in session.execute(statement)
    ]
    return AppointmentPage(rows=rows, total=total, page=page, page_size=page_size, when=when)
