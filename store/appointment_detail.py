"""One appointment as its clinic's admin sees it: the whole story on one page.

Its versions (the inbox events: type, version, when, outcome; never the payload), its
meeting (Zoom's id, the host, how the patient joins; never a join link, passcode or start
link: none is read), who was told what and when (the outbox, reminders, alerts), every
disclosure of the host's start link (store.notifications.StartLinkAudit) and every opening
of the patient's join link.

Found by the clinic's own id within the clinic: another clinic's appointment is simply
not there (None), exactly like one that does not exist. Ids come back as the clinic's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlmodel import Session, col, select

from telemed.foundation.shown_ids import key_of, own_text, principal_label
from telemed.foundation.tenancy import external_id
from telemed.store.models import Appointment, Doctor, InboxEvent, JoinClick, Meeting, OutboxMessage
from telemed.store.notifications import Alert, Reminder, StartLinkAudit


@dataclass(frozen=True)
class Version:
    event_id: str
    type: str
    version: int
    occurred_at: datetime
    received_at: datetime
    status: str
    processed_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class MeetingView:
    zoom_meeting_id: int
    host: str
    doctor_id: str | None
    start_time: datetime
    duration_minutes: int
    timezone: str
    synced_version: int
    registration: str
    registered: bool  # the patient has their own registrant link
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True)
class Notice:
    version: int
    role: str
    kind: str
    channel: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ReminderView:
    version: int
    role: str
    offset_seconds: int
    status: str
    decided_at: datetime


@dataclass(frozen=True)
class Disclosure:
    at: datetime
    principal: str
    via: str
    doctor_id: str


@dataclass(frozen=True)
class Click:
    at: datetime
    outcome: str


@dataclass(frozen=True)
class AlertView:
    at: datetime
    kind: str
    subject: str


@dataclass(frozen=True)
class AppointmentDetail:
    id: str
    version: int
    synced_version: int
    desired: str
    state: str
    attention_reason: str | None
    start_time: datetime | None
    duration_minutes: int | None
    timezone: str
    doctor_id: str
    doctor_name: str
    doctor_connection: str
    patient_id: str
    patient_name: str
    patient_email: str
    clinic_label: str | None  # the booking system's own clinic name or id, as the events carry it
    created_at: datetime
    updated_at: datetime
    versions: list[Version]
    meeting: MeetingView | None
    notices: list[Notice]
    reminders: list[ReminderView]
    alerts: list[AlertView]
    disclosures: list[Disclosure]
    clicks: list[Click]


def appointment_detail(session: Session, clinic_id: str, external: str) -> AppointmentDetail | None:
    key = key_of(clinic_id, external)
    if key is None:
        return None
    appointment = session.get(Appointment, key)
    if appointment is None or appointment.clinic_id != clinic_id:
        return None
    doctor = session.get(Doctor, appointment.doctor_id)

    def own(text: str | None) -> str | None:
        return None if text is None else own_text(text, clinic_id)

    return AppointmentDetail(
        id=external_id(key), version=appointment.version, synced_version=appointment.synced_version,
        desired=appointment.desired, state=appointment.state, attention_reason=own(appointment.attention_reason),
        start_time=appointment.start_time, duration_minutes=appointment.duration_minutes,
        timezone=appointment.timezone, doctor_id=external_id(appointment.doctor_id),
        doctor_name=doctor.name if doctor else "", doctor_connection=doctor.connection if doctor else "",
        patient_id=appointment.patient_id, patient_name=appointment.patient_name,
        patient_email=appointment.patient_email,
        clinic_label=appointment.clinic_name or appointment.event_clinic_id,
        created_at=appointment.created_at, updated_at=appointment.updated_at,
        versions=_versions(session, clinic_id, key), meeting=_meeting(session, key),
        notices=[Notice(m.version, m.role, m.kind, m.channel, m.status, m.attempts, m.created_at, m.sent_at,
                        own(m.last_error))
                 for m in session.exec(select(OutboxMessage).where(col(OutboxMessage.appointment_id) == key)
                                       .order_by(col(OutboxMessage.id)))],
        reminders=[ReminderView(r.version, r.role, r.offset_seconds, r.status, r.decided_at)
                   for r in session.exec(select(Reminder).where(col(Reminder.appointment_id) == key)
                                         .order_by(col(Reminder.id)))],
        alerts=[AlertView(a.created_at, a.kind, own_text(a.subject, clinic_id))
                for a in session.exec(select(Alert).where(col(Alert.appointment_id) == key,
                                                          col(Alert.clinic_id) == clinic_id)
                                      .order_by(col(Alert.id)))],
        disclosures=[Disclosure(d.at, principal_label(d.principal), d.via, external_id(d.doctor_id))
                     for d in session.exec(select(StartLinkAudit).where(col(StartLinkAudit.appointment_id) == key)
                                           .order_by(col(StartLinkAudit.id)))],
        clicks=[Click(c.at, c.outcome)
                for c in session.exec(select(JoinClick).where(col(JoinClick.appointment_id) == key)
                                      .order_by(col(JoinClick.id)))],
    )


def _versions(session: Session, clinic_id: str, key: str) -> list[Version]:
    # Named columns: the encrypted payload is neither read nor decrypted.
    statement = (
        sa_select(col(InboxEvent.event_id), col(InboxEvent.type), col(InboxEvent.version),
                  col(InboxEvent.occurred_at), col(InboxEvent.received_at), col(InboxEvent.status),
                  col(InboxEvent.processed_at), col(InboxEvent.note))
        .where(col(InboxEvent.appointment_id) == key, col(InboxEvent.clinic_id) == clinic_id)
        .order_by(col(InboxEvent.version), col(InboxEvent.received_at), col(InboxEvent.event_id))
    )
    return [Version(external_id(r.event_id), r.type, r.version, r.occurred_at, r.received_at, r.status,
                    r.processed_at, None if r.note is None else own_text(r.note, clinic_id))
            for r in session.execute(statement)]


def _meeting(session: Session, key: str) -> MeetingView | None:
    # Named columns: the join link, passcode and registrant link stay encrypted and unread.
    statement = sa_select(
        col(Meeting.zoom_meeting_id), col(Meeting.host), col(Meeting.doctor_id), col(Meeting.start_time),
        col(Meeting.duration_minutes), col(Meeting.timezone), col(Meeting.synced_version), col(Meeting.registration), col(Meeting.registrant_id),
        col(Meeting.created_at), col(Meeting.updated_at), col(Meeting.deleted_at),
    ).where(col(Meeting.appointment_id) == key)
    row = session.execute(statement).first()
    if row is None:
        return None
    return MeetingView(
        zoom_meeting_id=row.zoom_meeting_id, host=row.host,
        doctor_id=external_id(row.doctor_id) if row.doctor_id else None, start_time=row.start_time,
        duration_minutes=row.duration_minutes, timezone=row.timezone, synced_version=row.synced_version,
        registration=row.registration, registered=row.registrant_id is not None, created_at=row.created_at,
        updated_at=row.updated_at, deleted_at=row.deleted_at,
    )
