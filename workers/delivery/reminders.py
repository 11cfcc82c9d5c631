"""The reminders job: owe patients and doctors a reminder at each configured offset.

Run by the scheduler (one active instance). Each decision (queued or skipped) is recorded
once per (appointment, version, role, offset) in the same transaction as its outbox row,
then the row's id is queued for ``deliver_notification``. Delivery checks again at send
time, so a reminder overtaken by a move or a cancellation is superseded, not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlmodel import Session

from telemed.foundation.tenancy import clinic_of
from telemed.store import notifications, outbox
from telemed.store.models import utcnow
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
    offsets = parse_offsets(ctx.settings.reminder_offsets)
    signed = bool(ctx.settings.public_url)
    per_role = {role: offsets_for(role, offsets, signed) for role in ROLES}
    horizon = max((o for role_offsets in per_role.values() for o in role_offsets), default=0)
    if horizon == 0:
        return ReminderReport(0, 0)
    queued: list[tuple[int, str]] = []
    skipped = 0
    with ctx.database.session() as session:
        for appointment, told_at in notifications.reminder_candidates(session, now, horizon):
            assert appointment.start_time is not None
            decided = notifications.decided_reminders(session, appointment.id, appointment.version)
            for role in ROLES:
                decisions = plan(now, appointment.start_time, per_role[role], told_at)
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
