"""Erasing a clinic's rows: every table, in batches, restartable; the clinic row a tombstone.

A deletion goes in three moves (``telemed.clinic_deletion`` runs them, with Zoom and Redis
in between):

1. ``close``: the clinic's status becomes ``deleting``: nothing new is accepted for it,
   and its profile (its Zoom app, its webhook URL) is still there for what remains to do;
2. ``erase_rows``: every row the clinic owns, table by table (children before parents,
   rows found through a join before what they join to), in batches of ``batch_size``,
   each batch its own short transaction: a big clinic never holds one huge transaction,
   and a crash half-way leaves a consistent store that a rerun finishes;
3. ``finish``: the clinic row becomes a tombstone: status ``deleted``, ``deleted_at``,
   every other column cleared, so its id is never given again and nothing else is kept.

Rows are found by ``clinic_id`` where a table has it, through the clinic's appointments
or doctors otherwise, and finally by the scoped-key prefix ``<clinic>/`` (strays whose
parent is already gone). ``PLAN_TABLES`` names every table the plan covers; a unit test
checks that no table of the schema is missing from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from telemed.foundation.tenancy import DEFAULT_CLINIC, SEPARATOR, check_clinic_id
from telemed.store.api_keys import ApiKey
from telemed.store.clinic_tables import (
    CLINIC_DELETED,
    CLINIC_DELETING,
    Clinic,
    ClinicIngressKey,
    IngressRefusal,
)
from telemed.store.db import Database
from telemed.store.models import (
    Appointment,
    Doctor,
    InboxEvent,
    JoinClick,
    Meeting,
    OutboxMessage,
    ProvisioningIntent,
    RegistrationFallback,
    utcnow,
)
from telemed.store.notifications import (
    ADMIN_ROLE,
    NO_APPOINTMENT,
    Alert,
    Reminder,
    StartLinkAudit,
    WebhookEndpoint,
    webhook_key,
)
from telemed.store.oauth_states import ZoomOAuthState
from telemed.store.operations import MAX_DURATION_MINUTES, ZoomWebhookReceipt
from telemed.store.zoom_tokens import DoctorZoomToken

DEFAULT_BATCH = 500
BatchHook = Callable[[str, int], None]  # (table, rows removed) after each committed batch


class ErasureRefused(Exception):
    """This clinic cannot be erased (the default clinic, an unknown id). The text says why."""


@dataclass(frozen=True)
class ByAppointment:
    """The rows whose ``column`` holds one of the clinic's appointments' ids (or, with
    ``via``, a value ``via(ids)`` selects for them), found one batch of appointments at a
    time: an index lookup per batch, where an ``IN (SELECT …)`` over all of a big clinic's
    appointments would be evaluated again for every batch."""

    column: Any
    via: Callable[[list[str]], Any] | None = None


@dataclass(frozen=True)
class Step:
    """One table and the conditions that find the clinic's rows in it, drained in order."""

    table: type[SQLModel]
    conditions: tuple[Any, ...]

    @property
    def name(self) -> str:
        return str(self.table.__tablename__)


@dataclass
class ErasureReport:
    removed: dict[str, int] = field(default_factory=dict)  # table -> rows removed by this run

    def add(self, table: str, count: int) -> None:
        self.removed[table] = self.removed.get(table, 0) + count


# Every table a clinic's data can be in, in the order they are emptied (clinics last: its
# row is kept as the tombstone). tests/unit checks that this covers the whole schema.
PLAN_TABLES = (
    "zoom_webhook_receipts", "registration_fallbacks", "webhook_endpoints", "outbox", "reminders",
    "start_link_audits", "join_clicks", "provisioning_intents", "meetings", "alerts", "inbox_events",
    "appointments", "doctor_zoom_tokens", "zoom_oauth_states", "doctors", "api_keys",
    "clinic_ingress_keys", "ingress_refusals", "clinics",
)


def _prefix(clinic_id: str) -> str:
    # Clinic ids are a-z, 0-9 and '-' (foundation.tenancy): no LIKE wildcard to escape.
    return f"{clinic_id}{SEPARATOR}%"


def plan(clinic_id: str, webhook_url: str | None = None) -> list[Step]:
    """The steps that erase ``clinic_id``'s rows (the clinic row itself aside)."""
    prefix = _prefix(clinic_id)
    doctors = sa_select(col(Doctor.id)).where(col(Doctor.clinic_id) == clinic_id)
    stray_meetings = sa_select(col(Meeting.zoom_meeting_id)).where(col(Meeting.appointment_id).like(prefix))
    # A Zoom user (case ignored, as Zoom does) is the clinic's unless another clinic's doctor has it too.
    lower_users = sa_select(func.lower(col(Doctor.zoom_user))).where(col(Doctor.clinic_id) == clinic_id)
    lower_others = sa_select(func.lower(col(Doctor.zoom_user))).where(col(Doctor.clinic_id) != clinic_id)
    alerts = sa_select(col(Alert.id)).where(col(Alert.clinic_id) == clinic_id)

    def by_appointment(table: Any) -> Step:
        key = col(table.appointment_id)
        return Step(table, (ByAppointment(key), key.like(prefix)))

    def meetings_of(ids: list[str]) -> Any:
        return sa_select(col(Meeting.zoom_meeting_id)).where(col(Meeting.appointment_id).in_(ids))

    # The 410 switch of its status webhook is keyed by the clinic and the URL (as the
    # delivery worker keeps it): the clinic's own, even when another clinic posts to that URL.
    webhook_hashes = [webhook_key(webhook_url, clinic_id)] if webhook_url else []
    return [
        Step(ZoomWebhookReceipt, (
            ByAppointment(col(ZoomWebhookReceipt.zoom_meeting_id), via=meetings_of),
            col(ZoomWebhookReceipt.zoom_meeting_id).in_(stray_meetings),
            and_(func.lower(col(ZoomWebhookReceipt.zoom_user_id)).in_(lower_users),
                 func.lower(col(ZoomWebhookReceipt.zoom_user_id)).not_in(lower_others)),
        )),
        Step(RegistrationFallback, (
            col(RegistrationFallback.host).like(f"doctor:{prefix}"),
            and_(col(RegistrationFallback.host).in_(lower_users), col(RegistrationFallback.host).not_in(lower_others)),
        )),
        Step(WebhookEndpoint, (col(WebhookEndpoint.url_hash).in_(webhook_hashes),)),
        Step(OutboxMessage, (
            ByAppointment(col(OutboxMessage.appointment_id)),
            # An admin alert's row: no appointment, its version is the alert's id.
            and_(col(OutboxMessage.appointment_id) == NO_APPOINTMENT, col(OutboxMessage.role) == ADMIN_ROLE,
                 col(OutboxMessage.version).in_(alerts)),
            col(OutboxMessage.appointment_id).like(prefix),
        )),
        by_appointment(Reminder),
        by_appointment(StartLinkAudit),
        by_appointment(JoinClick),
        by_appointment(ProvisioningIntent),
        by_appointment(Meeting),
        Step(Alert, (col(Alert.clinic_id) == clinic_id, col(Alert.appointment_id).like(prefix))),
        Step(InboxEvent, (col(InboxEvent.clinic_id) == clinic_id, col(InboxEvent.event_id).like(prefix))),
        Step(Appointment, (col(Appointment.clinic_id) == clinic_id, col(Appointment.id).like(prefix))),
        Step(DoctorZoomToken, (col(DoctorZoomToken.doctor_id).in_(doctors), col(DoctorZoomToken.doctor_id).like(prefix))),
        Step(ZoomOAuthState, (col(ZoomOAuthState.doctor_id).in_(doctors), col(ZoomOAuthState.doctor_id).like(prefix))),
        Step(Doctor, (col(Doctor.clinic_id) == clinic_id, col(Doctor.id).like(prefix))),
        Step(ApiKey, (col(ApiKey.clinic_id) == clinic_id,)),
        Step(ClinicIngressKey, (col(ClinicIngressKey.clinic_id) == clinic_id,)),
        Step(IngressRefusal, (col(IngressRefusal.signer_clinic_id) == clinic_id, col(IngressRefusal.event_id).like(prefix))),
    ]


def _primary_key(table: type[SQLModel]) -> Any:
    (column,) = table.__table__.primary_key.columns  # type: ignore[attr-defined]
    return column


def _drain_by_appointment(database: Database, step: Step, clinic_id: str, found: ByAppointment, batch_size: int,
                          on_batch: BatchHook | None) -> int:
    """Delete the rows of the clinic's appointments, ``batch_size`` appointments per transaction."""
    table = step.table.__table__  # type: ignore[attr-defined]
    removed, last = 0, None
    while True:
        with database.session() as session:
            statement = sa_select(col(Appointment.id)).where(col(Appointment.clinic_id) == clinic_id)
            if last is not None:
                statement = statement.where(col(Appointment.id) > last)
            ids = list(session.execute(statement.order_by(col(Appointment.id)).limit(batch_size)).scalars())
            if not ids:
                return removed
            values = found.via(ids) if found.via is not None else ids
            count = int(session.execute(delete(table).where(found.column.in_(values))).rowcount)  # type: ignore[attr-defined]
        last = ids[-1]
        removed += count
        if count and on_batch is not None:
            on_batch(step.name, count)


def _drain(database: Database, step: Step, condition: Any, batch_size: int, on_batch: BatchHook | None) -> int:
    """Delete the rows ``condition`` finds, ``batch_size`` per transaction, until none is left."""
    key = _primary_key(step.table)
    table = step.table.__table__  # type: ignore[attr-defined]
    removed = 0
    while True:
        with database.session() as session:
            ids = list(session.execute(sa_select(key).where(condition).limit(batch_size)).scalars())
            if ids:
                session.execute(delete(table).where(key.in_(ids)))
        if not ids:
            return removed
        removed += len(ids)
        if on_batch is not None:
            on_batch(step.name, len(ids))


# The clinic row ---------------------------------------------------------------------


def _erasable(session: Session, clinic_id: str) -> Clinic:
    check_clinic_id(clinic_id)
    if clinic_id == DEFAULT_CLINIC:
        raise ErasureRefused("the default clinic cannot be deleted: it is configured by the environment "
                             "(unset its TELEMED_* settings instead)")
    row = session.get(Clinic, clinic_id)
    if row is None:
        raise ErasureRefused(f"no clinic {clinic_id}")
    return row


def clinic_status(session: Session, clinic_id: str) -> str:
    """The status of a clinic that may be erased; raises :class:`ErasureRefused`."""
    return _erasable(session, clinic_id).status


def close(session: Session, clinic_id: str) -> str:
    """Mark the clinic ``deleting`` (from any status but ``deleted``); returns the status now."""
    row = _erasable(session, clinic_id)
    if row.status not in {CLINIC_DELETING, CLINIC_DELETED}:
        now = utcnow()
        row.status, row.deleted_at, row.updated_at = CLINIC_DELETING, now, now
        session.add(row)
    return row.status


@dataclass(frozen=True, repr=False)
class ClinicFacts:
    """What the steps after the rows need and the rows will no longer tell (read while the
    clinic is ``deleting``): its S2S app's ids (the key of its cached Zoom token), its
    doctors (the keys of their token locks and rescue slots)."""

    zoom_account_id: str | None
    zoom_client_id: str | None
    doctor_ids: tuple[str, ...]


def facts(session: Session, clinic_id: str) -> ClinicFacts:
    row = _erasable(session, clinic_id)
    doctor_ids = tuple(session.exec(select(Doctor.id).where(Doctor.clinic_id == clinic_id).order_by(col(Doctor.id))))
    return ClinicFacts(row.zoom_account_id, row.zoom_client_id, doctor_ids)


def upcoming_meetings(session: Session, clinic_id: str, now: datetime | None = None) -> list[Meeting]:
    """The clinic's meetings live in Zoom that are not over yet (a deletion must decide
    what becomes of them)."""
    now = now or utcnow()
    appointments = sa_select(col(Appointment.id)).where(col(Appointment.clinic_id) == clinic_id)
    statement = (
        select(Meeting)
        .where(col(Meeting.appointment_id).in_(appointments), col(Meeting.deleted_at).is_(None),
               # none lasts longer than the contract's longest appointment: older ones are over
               col(Meeting.start_time) > now - timedelta(minutes=MAX_DURATION_MINUTES))
        .order_by(col(Meeting.start_time))
    )
    return [m for m in session.exec(statement) if m.start_time + timedelta(minutes=m.duration_minutes) > now]


def erase_rows(
    database: Database, clinic_id: str, *, batch_size: int = DEFAULT_BATCH, on_batch: BatchHook | None = None,
) -> ErasureReport:
    """Remove every row ``clinic_id`` owns (its clinic row aside), batch by batch.

    Only a clinic already ``close``d is erased, so a slip of the finger on an active
    clinic's id cannot start it.
    """
    with database.session() as session:
        row = _erasable(session, clinic_id)
        if row.status not in {CLINIC_DELETING, CLINIC_DELETED}:
            raise ErasureRefused(f"clinic {clinic_id} is {row.status}: close it first (status deleting)")
        webhook_url = row.webhook_url
    report = ErasureReport()
    for step in plan(clinic_id, webhook_url):
        report.add(step.name, 0)
        for condition in step.conditions:
            if isinstance(condition, ByAppointment):
                removed = _drain_by_appointment(database, step, clinic_id, condition, batch_size, on_batch)
            else:
                removed = _drain(database, step, condition, batch_size, on_batch)
            report.add(step.name, removed)
    return report


def finish(session: Session, clinic_id: str) -> bool:
    """Make the clinic row a tombstone: ``deleted``, every column but its id, status and
    dates cleared. True if this call did it (False: it already was one)."""
    row = _erasable(session, clinic_id)
    if row.status == CLINIC_DELETED:
        return False
    if row.status != CLINIC_DELETING:
        raise ErasureRefused(f"clinic {clinic_id} is {row.status}: close it and erase its rows first")
    now = utcnow()
    kept = {"id", "status", "created_at", "updated_at", "deleted_at"}
    for column in Clinic.__table__.columns:  # type: ignore[attr-defined]
        if column.name not in kept:
            setattr(row, column.name, "" if not column.nullable else None)
    row.status, row.updated_at = CLINIC_DELETED, now
    row.deleted_at = row.deleted_at or now
    session.add(row)
    return True

