"""``process_event``: fold one inbox event into the appointment's desired state."""

from __future__ import annotations

import structlog

from telemed.events.errors import InvalidEvent
from telemed.events.models import CancelledEvent
from telemed.events.parsing import parse_event
from telemed.foundation.tenancy import scoped
from telemed.store import appointments, inbox, states
from telemed.store.db import Database
from telemed.store.models import Appointment, utcnow
from telemed.workers.policy.decisions import decide_event
from telemed.workers.policy.retries import PermanentFailure

log = structlog.get_logger("telemed.workers")


def apply_event(database: Database, event_id: str) -> str | None:
    """Record the event's effect in one transaction. Returns the appointment to sync.

    Running it twice is harmless: a processed event is skipped, but its appointment is
    still returned while unsynced, in case the first run died before queueing the sync.
    """
    with database.session() as session:
        row = inbox.get_event(session, event_id)
        if row is None:
            raise PermanentFailure("no such event in the inbox")
        if row.status != states.EVENT_PENDING:
            current = appointments.get_appointment(session, row.appointment_id)
            unsynced = current is not None and current.synced_version < current.version
            return row.appointment_id if unsynced else None

        try:
            event = parse_event(row.payload, allow_past=True)
        except InvalidEvent as exc:
            # Accepted before a field rule was tightened (events.rules): it will never
            # parse, so no retry; the dead letter names the fields, never their values.
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors)
            raise PermanentFailure(f"the stored event breaks the contract now ({fields})") from None
        record = event.appointment
        # The payload holds the clinic's own ids; the store keys them by clinic.
        clinic = row.clinic_id
        key, doctor_key = row.appointment_id, scoped(clinic, record.doctor.id)
        current = appointments.get_appointment(session, key, for_update=True)
        decision = decide_event(current.version if current else None, record.version)
        if not decision.apply:
            inbox.mark_processed(session, row, states.EVENT_STALE, decision.reason)
            log.info("stale event ignored", event_id=event_id, appointment_id=key,
                     version=record.version, outcome="stale")
            return None

        doctor = record.doctor
        appointments.upsert_doctor(
            session, id=doctor_key, clinic_id=clinic, name=doctor.name, email=str(doctor.email),
            zoom_user=doctor.zoom_host,
        )
        cancelled = isinstance(event, CancelledEvent)
        if current is None:
            current = Appointment(
                id=key, clinic_id=clinic, version=record.version, desired=states.SCHEDULED,
                timezone=record.timezone, doctor_id=doctor_key, patient_id=record.patient.id,
                patient_name=record.patient.name,
                patient_email=str(record.patient.email), last_event_id=event_id,
            )
        current.version = record.version
        current.desired = states.CANCELLED if cancelled else states.SCHEDULED
        current.timezone = record.timezone
        current.doctor_id = doctor_key
        current.patient_id = record.patient.id
        current.patient_name = record.patient.name
        current.patient_email = str(record.patient.email)
        current.event_clinic_id = record.clinic.id if record.clinic else None
        current.clinic_name = record.clinic.name if record.clinic else None
        if record.start_time is not None:
            current.start_time = record.start_time
        if record.duration_minutes is not None:
            current.duration_minutes = record.duration_minutes
        current.state = states.PENDING
        current.attention_reason = None
        current.last_event_id = event_id
        current.updated_at = utcnow()
        session.add(current)
        inbox.mark_processed(session, row, states.EVENT_APPLIED, decision.reason)
    log.info("event applied", event_id=event_id, appointment_id=key, clinic_id=clinic,
             version=record.version, outcome="applied")
    return key
