"""The reminders job: owe patients and doctors a reminder at each configured offset.

Run by the scheduler (one active instance). Each decision (queued or skipped) is recorded
once per (appointment, version, role, offset) in the same transaction as its outbox row,
then the row's id is queued for ``deliver_notification``. Delivery checks again at send
time, so a reminder overtaken by a move or a cancellation is superseded, not sent.

Each clinic has its own offsets (its profile's, else TELEMED_REMINDER_OFFSETS): the job
looks as far ahead as the furthest offset of any clinic and plans each appointment with
its own clinic's. A clinic whose offsets do not parse gets no reminders (logged), and
the others are not held up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlmodel import Session

from telemed.foundation.tenancy import UnknownClinic, clinic_of
from telemed.store import notifications, outbox
from telemed.store.models import utcnow
from telemed.workers.clinic_profiles import reminder_offsets
from telemed.workers.context import WorkerContext
from telemed.workers.policy.reminder_plan import Decision, offsets_for, parse_offsets, plan, reminder_kind

log = structlog.get_logger("telemed.workers")
ROLES = ("patient", "doctor")


@dataclass(frozen=True)
class ReminderReport:
    queued: int
    skipped: int


def run_reminders(
    ctx: WorkerContext, enqueue: Callable[..., object], *, now: datetime | None = None
) -> ReminderReport:
    """Owe what is due; each owed row is queued with ``enqueue(outbox_id, clinic=...)``."""
    now = now or utcnow()
    signed = bool(ctx.settings.public_url)
    plans: dict[str, dict[str, list[int]]] = {}

    def per_role(clinic_id: str) -> dict[str, list[int]]:
        if clinic_id not in plans:
            plans[clinic_id] = _clinic_offsets(ctx, clinic_id, signed)
        return plans[clinic_id]

    horizon = max((o for clinic_id in ctx.clinics.clinic_ids() for offsets in per_role(clinic_id).values()
                   for o in offsets), default=0)
    if horizon == 0:
        return ReminderReport(0, 0)
    queued: list[tuple[int, str]] = []
    skipped = 0
    with ctx.database.session() as session:
        for appointment, told_at in notifications.reminder_candidates(session, now, horizon):
            assert appointment.start_time is not None
            offsets = per_role(clinic_of(appointment.id))
            if not any(offsets.values()):
                continue
            decided = notifications.decided_reminders(session, appointment.id, appointment.version)
            for role in ROLES:
                decisions = plan(now, appointment.start_time, offsets[role], told_at)
                for offset, decision in decisions.items():
                    if decision is Decision.WAIT or (role, offset) in decided:
                        continue
                    if decision is Decision.SKIP:
                        skipped += notifications.record_reminder(
                            session, appointment_id=appointment.id, version=appointment.version, role=role,
                            offset_seconds=offset, status=notifications.REMINDER_SKIPPED)
                        continue
                    outbox_id = _owe_reminder(session, appointment.id, appointment.version, role, offset)
                    if outbox_id is not None:
                        queued.append((outbox_id, appointment.id))
    for outbox_id, appointment_id in queued:
        enqueue(outbox_id, clinic=clinic_of(appointment_id))  # through that clinic's gate
    if queued or skipped:
        log.info("reminders decided", count=len(queued), skipped=skipped)
    return ReminderReport(len(queued), skipped)


def _clinic_offsets(ctx: WorkerContext, clinic_id: str, signed: bool) -> dict[str, list[int]]:
    """The clinic's reminder offsets per role; none for a clinic that is gone or whose
    offsets do not parse."""
    try:
        offsets = parse_offsets(reminder_offsets(ctx.profile(clinic_id), ctx.settings))
    except UnknownClinic:
        return {role: [] for role in ROLES}
    except ValueError as exc:
        log.error("clinic's reminder offsets do not parse; no reminders for it", clinic_id=clinic_id,
                  reason=str(exc).split(":", 1)[-1].strip())
        return {role: [] for role in ROLES}
    return {role: offsets_for(role, offsets, signed) for role in ROLES}


def _owe_reminder(session: Session, appointment_id: str, version: int, role: str, offset: int) -> int | None:
    """The outbox row and the bookkeeping row, in the caller's transaction."""
    message = outbox.add_message(session, appointment_id=appointment_id, version=version, role=role,
                                 kind=reminder_kind(offset))
    if message is None:
        return None  # already owed (a concurrent scheduler): nothing to add
    session.flush()
    assert message.id is not None
    recorded = notifications.record_reminder(session, appointment_id=appointment_id, version=version, role=role,
                                             offset_seconds=offset, status=notifications.REMINDER_QUEUED,
                                             outbox_id=message.id)
    return message.id if recorded else None


def reminders_job(ctx: WorkerContext) -> dict[str, int]:
    report = run_reminders(ctx, ctx.queue.deliver_notification)
    return {"reminders_queued": report.queued, "reminders_skipped": report.skipped}
