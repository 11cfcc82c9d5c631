"""A clinic's own data, for its admins (``telemed clinics export``): one JSON document.

Everything the clinic owns, in the clinic's own ids (``foundation.tenancy.external_id``):
its profile without secrets, its doctors (their Zoom connection state, never a token),
appointments with the patient's name and e-mail (the clinic's own patients' data),
every event as its booking system sent it, meetings with the patient's join links (a
start_url is never stored, so none is exported), notifications owed and sent, reminders,
start-link disclosures, join clicks, alerts, API keys and ingress keys (never a secret or
a hash) and the events refused for naming another clinic.

Written as it is read: each section is read in pages (``page_size`` rows, or the rows of
``page_size`` appointments), each page in its own short transaction, and written before
the next is read, so a clinic with 100,000 appointments never sits in memory at once and
no long transaction holds the database (SQLite's write lock included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import and_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from telemed.foundation.tenancy import DEFAULT_CLINIC, check_clinic_id, external_id
from telemed.store.api_keys import ApiKey
from telemed.store.clinic_tables import CLINIC_DELETED, Clinic, ClinicIngressKey, IngressRefusal
from telemed.store.db import Database
from telemed.store.models import Appointment, Doctor, InboxEvent, JoinClick, Meeting, OutboxMessage
from telemed.store.notifications import ADMIN_ROLE, NO_APPOINTMENT, Alert, Reminder, StartLinkAudit
from telemed.store.zoom_tokens import DoctorZoomToken

FORMAT = "telemed-clinic-export/1"
DEFAULT_PAGE = 500
Record = dict[str, Any]


class ExportRefused(Exception):
    """No such clinic (or it was deleted): nothing to export."""


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _ext(key: str | None) -> str | None:
    return external_id(key) if key is not None else None


# The profile ----------------------------------------------------------------------------


def profile_record(row: Clinic | None, clinic_id: str) -> Record:
    """The clinic's profile: secrets only as whether they are set."""
    if row is None:  # the default clinic without a row: configured by the environment
        return {"id": clinic_id, "configured_by": "environment"}
    return {
        "id": row.id, "name": row.name, "status": row.status,
        "zoom_account_id": row.zoom_account_id, "zoom_client_id": row.zoom_client_id,
        "zoom_client_secret_set": bool(row.zoom_client_secret),
        "zoom_oauth_client_id": row.zoom_oauth_client_id,
        "zoom_oauth_client_secret_set": bool(row.zoom_oauth_client_secret),
        "zoom_webhook_secret_set": bool(row.zoom_webhook_secret),
        "mail_from": row.mail_from, "mail_reply_to": row.mail_reply_to,
        "mail_display_name": row.mail_display_name, "reminder_offsets": row.reminder_offsets,
        "webhook_url": row.webhook_url, "webhook_secret_set": bool(row.webhook_secret),
        "admin_emails": [a for a in re.split(r"[,\s]+", row.admin_emails or "") if a],
        "created_at": _when(row.created_at), "updated_at": _when(row.updated_at),
    }


def clinic_row(session: Session, clinic_id: str) -> Clinic | None:
    """The clinic's row (None for the default clinic without one); raises
    :class:`ExportRefused` for an unknown or deleted clinic."""
    check_clinic_id(clinic_id)
    row = session.get(Clinic, clinic_id)
    if clinic_id == DEFAULT_CLINIC:
        return row
    if row is None or row.status == CLINIC_DELETED:
        raise ExportRefused(f"no clinic {clinic_id}")
    return row


# The sections ---------------------------------------------------------------------------


class _Section:
    """One table's rows of the clinic, with how each is shown.

    Rows found by ``where`` are read in primary-key order (keyset paging on ``key``). Rows
    that hang off an appointment (``child``: the column holding its id) are read for one
    page of the clinic's appointments at a time, appointment by appointment: an index
    lookup per page, where ``IN (SELECT …)`` over all of a big clinic's appointments would
    be evaluated again for every page. ``also``: rows of the clinic no appointment names
    (an alert's mail), read by keyset after them.
    """

    def __init__(self, name: str, entities: tuple[Any, ...], key: Any, record: Callable[..., Record], *,
                 where: Callable[[str], Any] | None = None, child: Any = None,
                 also: Callable[[str], Any] | None = None, outer: tuple[tuple[Any, Any], ...] = ()) -> None:
        self.name, self.entities, self.key, self.record = name, entities, key, record
        self.where, self.child, self.also, self.outer = where, child, also, outer

    def pages(self, database: Database, clinic_id: str, page_size: int) -> Iterator[list[Record]]:
        if self.child is not None:
            yield from self._by_appointment(database, clinic_id, page_size)
        for where in (self.where, self.also):
            if where is not None:
                yield from self._by_key(database, where(clinic_id), page_size)

    def _select(self) -> Any:
        statement = sa_select(*self.entities)
        for table, on in self.outer:
            statement = statement.outerjoin(table, on)
        return statement

    def _by_key(self, database: Database, where: Any, page_size: int) -> Iterator[list[Record]]:
        last: Any = None
        while True:
            statement = self._select().where(where)
            if last is not None:
                statement = statement.where(self.key > last)
            with database.session() as session:
                rows = list(session.execute(statement.order_by(self.key).limit(page_size)))
                records = [self.record(*row) for row in rows]
            if not rows:
                return
            yield records
            last = getattr(rows[-1][0], self.key.key)

    def _by_appointment(self, database: Database, clinic_id: str, page_size: int) -> Iterator[list[Record]]:
        last: str | None = None
        while True:
            page = sa_select(col(Appointment.id)).where(col(Appointment.clinic_id) == clinic_id)
            if last is not None:
                page = page.where(col(Appointment.id) > last)
            with database.session() as session:
                ids = list(session.execute(page.order_by(col(Appointment.id)).limit(page_size)).scalars())
                if not ids:
                    return
                statement = self._select().where(self.child.in_(ids)).order_by(self.child, self.key)
                records = [self.record(*row) for row in session.execute(statement)]
            if records:
                yield records
            last = ids[-1]


def _doctor(d: Doctor, t: DoctorZoomToken | None) -> Record:
    return {
        "id": external_id(d.id), "name": d.name, "email": d.email, "zoom_user": d.zoom_user,
        "zoom_connection": t.status if t is not None else d.connection,
        "zoom_connected_at": _when(t.connected_at) if t else None,
        "zoom_token_expires_at": _when(t.expires_at) if t else None,
        "zoom_token_refreshed_at": _when(t.refreshed_at) if t else None,
        "updated_at": _when(d.updated_at),
    }


def _appointment(a: Appointment) -> Record:
    return {
        "id": external_id(a.id), "version": a.version, "desired": a.desired, "state": a.state,
        "start_time": _when(a.start_time), "duration_minutes": a.duration_minutes, "timezone": a.timezone,
        "doctor_id": external_id(a.doctor_id), "patient_id": a.patient_id,
        "patient_name": a.patient_name, "patient_email": a.patient_email,
        "clinic_label": a.event_clinic_id, "clinic_name": a.clinic_name,
        "synced_version": a.synced_version, "attention_reason": a.attention_reason,
        "last_event_id": external_id(a.last_event_id),
        "created_at": _when(a.created_at), "updated_at": _when(a.updated_at),
    }


def _event(e: InboxEvent) -> Record:
    try:
        payload: Any = json.loads(e.payload)
    except ValueError:  # stored by an older version as something else: give it as it is
        payload = e.payload
    return {
        "event_id": external_id(e.event_id), "type": e.type, "appointment_id": external_id(e.appointment_id),
        "version": e.version, "occurred_at": _when(e.occurred_at), "received_at": _when(e.received_at),
        "status": e.status, "processed_at": _when(e.processed_at), "note": e.note, "payload": payload,
    }


def _meeting(m: Meeting) -> Record:
    return {
        "appointment_id": external_id(m.appointment_id), "zoom_meeting_id": m.zoom_meeting_id, "host": m.host,
        "doctor_id": _ext(m.doctor_id), "start_time": _when(m.start_time),
        "duration_minutes": m.duration_minutes, "timezone": m.timezone, "synced_version": m.synced_version,
        # The patient's links: the clinic's own patients' data. A host start_url is never stored.
        "join_url": m.join_url, "passcode": m.passcode, "registration": m.registration,
        "registrant_join_url": m.registrant_join_url,
        "deleted_at": _when(m.deleted_at), "created_at": _when(m.created_at), "updated_at": _when(m.updated_at),
    }


def _notification(o: OutboxMessage) -> Record:
    alert = o.role == ADMIN_ROLE  # an admin alert's mail: its version is the alert's id
    return {
        "id": o.id, "appointment_id": None if o.appointment_id == NO_APPOINTMENT else external_id(o.appointment_id),
        "alert_id": o.version if alert else None, "version": None if alert else o.version,
        "role": o.role, "kind": o.kind, "channel": o.channel, "status": o.status, "attempts": o.attempts,
        "last_error": o.last_error, "created_at": _when(o.created_at), "sent_at": _when(o.sent_at),
        "message_ref": o.message_ref,
    }


def _reminder(r: Reminder) -> Record:
    return {"appointment_id": external_id(r.appointment_id), "version": r.version, "role": r.role,
            "offset_seconds": r.offset_seconds, "status": r.status, "notification_id": r.outbox_id,
            "decided_at": _when(r.decided_at)}


def _disclosure(a: StartLinkAudit) -> Record:
    return {"appointment_id": external_id(a.appointment_id), "doctor_id": external_id(a.doctor_id),
            "principal": a.principal, "via": a.via, "at": _when(a.at)}


def _click(c: JoinClick) -> Record:
    return {"appointment_id": external_id(c.appointment_id), "outcome": c.outcome, "at": _when(c.at)}


def _alert(a: Alert) -> Record:
    return {"id": a.id, "kind": a.kind, "subject": a.subject, "body": a.body,
            "appointment_id": _ext(a.appointment_id), "created_at": _when(a.created_at)}


def _api_key(k: ApiKey) -> Record:
    return {"prefix": k.prefix, "role": k.role, "label": k.label, "created_at": _when(k.created_at),
            "last_used_at": _when(k.last_used_at), "revoked_at": _when(k.revoked_at)}


def _ingress_key(k: ClinicIngressKey) -> Record:
    return {"key_id": k.key_id, "created_at": _when(k.created_at), "last_used_at": _when(k.last_used_at),
            "retired_at": _when(k.retired_at)}


def _refusal(r: IngressRefusal) -> Record:
    return {"key_id": r.key_id, "named_clinic_id": r.named_clinic_id, "event_id": _ext(r.event_id),
            "reason": r.reason, "at": _when(r.at)}


def _alert_ids(clinic_id: str) -> Any:
    return sa_select(col(Alert.id)).where(col(Alert.clinic_id) == clinic_id)


SECTIONS: tuple[_Section, ...] = (
    _Section("doctors", (Doctor, DoctorZoomToken), col(Doctor.id), _doctor, where=lambda c: col(Doctor.clinic_id) == c,
             outer=((DoctorZoomToken, col(DoctorZoomToken.doctor_id) == col(Doctor.id)),)),
    _Section("appointments", (Appointment,), col(Appointment.id), _appointment,
             where=lambda c: col(Appointment.clinic_id) == c),
    _Section("events", (InboxEvent,), col(InboxEvent.event_id), _event, where=lambda c: col(InboxEvent.clinic_id) == c),
    _Section("meetings", (Meeting,), col(Meeting.appointment_id), _meeting, child=col(Meeting.appointment_id)),
    _Section("notifications", (OutboxMessage,), col(OutboxMessage.id), _notification,
             child=col(OutboxMessage.appointment_id),
             also=lambda c: and_(col(OutboxMessage.appointment_id) == NO_APPOINTMENT, col(OutboxMessage.role) == ADMIN_ROLE,
                                 col(OutboxMessage.version).in_(_alert_ids(c)))),
    _Section("reminders", (Reminder,), col(Reminder.id), _reminder, child=col(Reminder.appointment_id)),
    _Section("start_link_disclosures", (StartLinkAudit,), col(StartLinkAudit.id), _disclosure,
             child=col(StartLinkAudit.appointment_id)),
    _Section("join_clicks", (JoinClick,), col(JoinClick.id), _click, child=col(JoinClick.appointment_id)),
    _Section("alerts", (Alert,), col(Alert.id), _alert, where=lambda c: col(Alert.clinic_id) == c),
    _Section("api_keys", (ApiKey,), col(ApiKey.id), _api_key, where=lambda c: col(ApiKey.clinic_id) == c),
    _Section("ingress_keys", (ClinicIngressKey,), col(ClinicIngressKey.key_id), _ingress_key,
             where=lambda c: col(ClinicIngressKey.clinic_id) == c),
    _Section("ingress_refusals", (IngressRefusal,), col(IngressRefusal.id), _refusal,
             where=lambda c: col(IngressRefusal.signer_clinic_id) == c),
)


def write_export(database: Database, clinic_id: str, out: TextIO, *, page_size: int = DEFAULT_PAGE,
                 now: datetime | None = None) -> dict[str, int]:
    """Write the clinic's document to ``out`` as it is read; returns the rows per section.

    Raises :class:`ExportRefused` (before writing anything) for an unknown or deleted clinic.
    """
    with database.session() as session:
        profile = profile_record(clinic_row(session, clinic_id), clinic_id)
    counts: dict[str, int] = {}
    out.write("{\n")
    out.write(f'"format": {json.dumps(FORMAT)},\n"exported_at": {json.dumps(_when(now or datetime.now(UTC)))},\n')
    out.write(f'"clinic": {json.dumps(profile, ensure_ascii=False)}')
    for section in SECTIONS:
        out.write(f',\n{json.dumps(section.name)}: [')
        count = 0
        for page in section.pages(database, clinic_id, page_size):
            for record in page:
                out.write(("," if count else "") + "\n" + json.dumps(record, ensure_ascii=False))
                count += 1
        out.write("\n]" if count else "]")
        counts[section.name] = count
    out.write("\n}\n")
    return counts

