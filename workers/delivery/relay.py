"""``deliver_notification``: the outbox relay. One outbox row in, one mail or webhook out.

The content is built at send time from the store: the patient's notice from the stored
meeting, the doctor's with a signed start link (or, without ``TELEMED_PUBLIC_URL``, a
start_url fetched fresh from Zoom: it is never stored), the booking system's webhook from
the appointment's status, an admin alert from the ``alerts`` table. The row is marked
sent after the mail server or webhook accepted it; a crash in between can send twice,
never zero times (stable Message-ID / ``X-Telemed-Delivery`` let receivers fold a copy).

Retries are per channel and counted in the outbox row itself, so they survive a lost
queue message; when to try again, and when to stop, is ``workers.policy.retries.decide``'s
call. A message that finally fails becomes an admin alert. A failure that is not a
delivery error (a bug) goes to the actor, which asks the same decision.
A short Redis lock per row keeps a reconciler re-queue and a pending retry from sending
the same row twice at once.

Each inbox tells one story (``decisions.decide_send``): a patient's or doctor's mail is
claimed under the appointment's row lock before it is sent, so a notice older than one
already sent (or being sent) to that recipient is superseded, one newer than a notice in
flight waits for it, and the first mail a recipient gets is the invitation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import dramatiq
import structlog

from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import notifications, outbox, states
from telemed.store.models import utcnow
from telemed.workers import metrics
from telemed.workers.alerts import count_alert
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.admin import send_admin_alert
from telemed.workers.delivery.mail import send_mail
from telemed.workers.delivery.snapshot import AdminRow, Snapshot, read_snapshot, superseded_reason
from telemed.workers.delivery.snapshot import message_id as message_id_of
from telemed.workers.delivery.webhook import disable_after_gone, send_webhook
from telemed.workers.leases import LEASE_TTL_S, renewed
from telemed.workers.notifier.errors import DeliveryError, InvalidMessage, MeetingGone
from telemed.workers.notifier.webhook import WebhookGone
from telemed.workers.policy.decisions import RecipientMail, Send, SendDecision, decide_send
from telemed.workers.policy.retries import GiveUp, PermanentFailure, decide
from telemed.workers.queue.metrics_middleware import observe_end_to_end

log = structlog.get_logger("telemed.workers")
LOCK_TTL_S = LEASE_TTL_S  # renewed while held (workers.leases): a killed holder's lock frees soon
# A retry is Dramatiq's job; the reconciler re-queues the row only if that retry was lost.
RECONCILER_SLACK = timedelta(seconds=60)
# How soon a mail waiting for an older one to the same recipient tries again (a send
# takes tens of milliseconds; the reconciler is the backstop if this message is lost).
WAIT_FOR_OLDER_MS = 500
STORY_ROLES = frozenset({"patient", "doctor"})


@dataclass
class DeliveryResult:
    status: str  # sent | superseded | skipped | failed | busy | waiting | done
    follow_ups: list[int] = field(default_factory=list)  # outbox ids to queue (admin alerts)
    retry_after_ms: int | None = None  # queue this row again after that long (waiting)


def _lock_key(ctx: WorkerContext, outbox_id: int) -> str:
    return f"{ctx.settings.redis_namespace}:lock:outbox:{outbox_id}"


def deliver_notification(ctx: WorkerContext, outbox_id: int) -> DeliveryResult:
    lock = ctx.redis.lock(_lock_key(ctx, outbox_id), timeout=LOCK_TTL_S)
    if not lock.acquire(blocking=False):
        return DeliveryResult("busy")  # another worker has this row right now
    try:
        with renewed(lock):
            return _deliver_locked(ctx, outbox_id)
    finally:
        with contextlib.suppress(Exception):  # expired or Redis blinked: the TTL frees it anyway
            lock.release()


def _deliver_locked(ctx: WorkerContext, outbox_id: int) -> DeliveryResult:
    found = read_snapshot(ctx.database, outbox_id)
    if found is None:
        return DeliveryResult("done")
    if isinstance(found, AdminRow):
        return _attempt(ctx, outbox_id, "mail", notifications.ADMIN_ROLE, "alert",
                        partial(send_admin_alert, ctx, outbox_id, found.alert_id, found.token))
    snapshot = found
    structlog.contextvars.bind_contextvars(clinic_id=clinic_of(snapshot.appointment_id))
    superseded = superseded_reason(snapshot, utcnow())
    if superseded:
        return _supersede(ctx, snapshot, superseded)
    message_id = message_id_of(snapshot)  # the row's own, whatever kind of mail it goes out as
    if snapshot.channel == "mail" and snapshot.role in STORY_ROLES:
        decision = _claim(ctx, snapshot)
        if decision is None:
            return DeliveryResult("done")
        if decision.action is Send.SUPERSEDE:
            return _supersede(ctx, snapshot, decision.reason)
        if decision.action is Send.WAIT:
            log.info("notification waits for an older one to the same recipient", outbox_id=outbox_id,
                     appointment_id=snapshot.appointment_id, role=snapshot.role, kind=snapshot.kind,
                     outcome="waiting")
            return DeliveryResult("waiting", retry_after_ms=WAIT_FOR_OLDER_MS)
        if decision.kind != snapshot.kind:
            log.info("notification goes out as the invitation: the recipient was never told",
                     outbox_id=outbox_id, appointment_id=snapshot.appointment_id, role=snapshot.role,
                     kind=snapshot.kind)
            snapshot = replace(snapshot, kind=decision.kind)
    if snapshot.channel == "webhook":
        send: Callable[[], Any] = partial(send_webhook, ctx, snapshot)
    elif snapshot.channel == "mail" and snapshot.role in {"patient", "doctor"}:
        send = partial(send_mail, ctx, snapshot, message_id)
    else:
        raise PermanentFailure(f"no way to deliver role {snapshot.role!r} on channel {snapshot.channel!r}")
    return _attempt(ctx, outbox_id, snapshot.channel, snapshot.role, snapshot.template_kind, send,
                    appointment_id=snapshot.appointment_id, received_at=snapshot.event_received_at)


def _attempt(
    ctx: WorkerContext, outbox_id: int, channel: str, role: str, kind: str, send: Callable[[], Any],
    appointment_id: str | None = None, received_at: datetime | None = None,
) -> DeliveryResult:
    """Run one send; turn its outcome into the row's new state.

    ``send`` returns a reference to record (a Message-ID), or ``("skipped", reason)``.
    """
    try:
        outcome = send()
    except WebhookGone:
        follow_ups = disable_after_gone(ctx, outbox_id)
        _count(channel, role, kind, "gone")
        return DeliveryResult("failed", follow_ups)
    except MeetingGone as exc:
        return _after_meeting_gone(ctx, outbox_id, channel, role, kind, exc)
    except (DeliveryError, InvalidMessage) as exc:  # anything else is a bug: the actor decides
        return _retry_or_give_up(ctx, outbox_id, channel, role, kind, exc)
    if isinstance(outcome, tuple):  # ("skipped", reason): deliberately not sent
        _, reason = outcome
        _finish(ctx, outbox_id, lambda s, m: notifications.mark_skipped(s, m, reason))
        _count(channel, role, kind, "skipped")
        log.info("notification skipped", outbox_id=outbox_id, appointment_id=appointment_id, role=role,
                 kind=kind, channel=channel, reason=reason, outcome="skipped")
        return DeliveryResult("skipped")
    with ctx.database.session() as session:
        outbox.mark_sent_if_pending(session, outbox_id, ref=outcome if isinstance(outcome, str) else None)
    _count(channel, role, kind, "sent")
    if received_at is not None:
        observe_end_to_end(received_at)  # metric: event received → notice sent
    log.info("notification sent", appointment_id=appointment_id, outbox_id=outbox_id, kind=kind, role=role,
             channel=channel, outcome="sent")
    return DeliveryResult("sent")


def _claim(ctx: WorkerContext, s: Snapshot) -> SendDecision | None:
    """Decide, under the appointment's row lock, whether this mail may go out now and as
    what; claim it if so. None when the row was settled meanwhile."""
    with ctx.database.session() as session:
        rows = outbox.recipient_mails_locked(session, s.appointment_id, s.role)
        mine = next((r for r in rows if r.id == s.outbox_id), None)
        if mine is None or mine.status != states.OUTBOX_PENDING:
            return None
        claimed = [r for r in rows if r.id != s.outbox_id and r.status == states.OUTBOX_PENDING
                   and r.sending_since is not None]
        # A claim counts while its worker lives: it holds the row's Redis lock (renewed while
        # it works, gone soon after a crash), so a killed sender blocks nobody for long.
        alive = _held(ctx, [r.id for r in claimed if r.id is not None])
        decision = decide_send(
            _recipient_mail(mine, in_flight=False),
            [_recipient_mail(r, in_flight=r.id in alive) for r in rows if r.id != s.outbox_id],
        )
        if decision.action is Send.SEND:
            outbox.claim_for_sending(session, mine)
    return decision


def _recipient_mail(row: Any, *, in_flight: bool) -> RecipientMail:
    return RecipientMail(outbox_id=row.id, version=row.version, kind=row.kind, status=row.status,
                         in_flight=in_flight)


def _held(ctx: WorkerContext, outbox_ids: list[int]) -> set[int]:
    if not outbox_ids:
        return set()
    pipe = ctx.redis.pipeline(transaction=False)
    for outbox_id in outbox_ids:
        pipe.exists(_lock_key(ctx, outbox_id))
    return {i for i, held in zip(outbox_ids, pipe.execute(), strict=True) if held}


def _supersede(ctx: WorkerContext, snapshot: Snapshot, reason: str) -> DeliveryResult:
    _finish(ctx, snapshot.outbox_id, lambda s, m: outbox.mark_superseded(s, m, reason))
    _count(snapshot.channel, snapshot.role, snapshot.template_kind, "superseded")
    log.info("notification superseded", appointment_id=snapshot.appointment_id, outbox_id=snapshot.outbox_id,
             kind=snapshot.kind, role=snapshot.role, channel=snapshot.channel, outcome="superseded")
    return DeliveryResult("superseded")


def _after_meeting_gone(
    ctx: WorkerContext, outbox_id: int, channel: str, role: str, kind: str, error: MeetingGone
) -> DeliveryResult:
    """Zoom lost the meeting between reading the row and building the notice. A cancel
    applied meanwhile makes it superseded (found by the crash-and-fault run: it used to
    fail for good and alert an admin); otherwise retry, with the store's meeting then."""
    found = read_snapshot(ctx.database, outbox_id)
    if found is None:
        return DeliveryResult("done")
    if isinstance(found, Snapshot) and (superseded := superseded_reason(found, utcnow())):
        return _supersede(ctx, found, superseded)
    return _retry_or_give_up(ctx, outbox_id, channel, role, kind, error)


def _retry_or_give_up(
    ctx: WorkerContext, outbox_id: int, channel: str, role: str, kind: str,
    error: DeliveryError | InvalidMessage,
) -> DeliveryResult:
    """The send failed: ask the decision, with this row's own try count."""
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is None or message.status != states.OUTBOX_PENDING:
            return DeliveryResult("done")
        decision = decide(error, message.attempts + 1, channel=channel,
                          base_seconds=ctx.settings.notification_retry_base_seconds)
        if not isinstance(decision, GiveUp):
            delay_ms = decision.delay_ms or 0  # an outbox channel's decision always has a delay
            outbox.mark_attempt_failed(session, message, decision.reason, final=False,
                                       retry_in=timedelta(milliseconds=delay_ms) + RECONCILER_SLACK)
            attempts = message.attempts
    if isinstance(decision, GiveUp):
        _count(channel, role, kind, "failed")
        return DeliveryResult("failed", give_up(ctx, outbox_id, decision.reason))
    _count(channel, role, kind, "retry")
    log.warning("notification will be retried", outbox_id=outbox_id, channel=channel, role=role, kind=kind,
                attempts=attempts, delay_s=round(delay_ms / 1000, 1), reason=decision.reason)
    raise dramatiq.Retry(decision.reason, delay=delay_ms)


def give_up(ctx: WorkerContext, outbox_id: int, reason: str) -> list[int]:
    """A notification that finally failed becomes an admin alert, not silence.

    Returns the alert's outbox id to queue (none when the failed row was itself an alert).
    """
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is None or message.status != states.OUTBOX_PENDING:
            return []
        outbox.mark_attempt_failed(session, message, reason, final=True)
        role, kind, channel, appointment_id = message.role, message.kind, message.channel, message.appointment_id
        if role == notifications.ADMIN_ROLE:
            log.error("admin alert could not be mailed", outbox_id=outbox_id, reason=reason)
            return []
        shown = external_id(appointment_id)
        subject = f"Notification failed: {channel} to {role} ({kind}) for appointment {shown}"
        body = (f"The {kind} {channel} to the {role} of appointment {shown} failed for good "
                f"after {message.attempts} attempt(s).\n\nReason: {reason}\n\n"
                f"See: telemed status {shown}")
        _alert_id, alert_outbox_id = notifications.queue_alert(session, "notification_failed", subject, body,
                                                               appointment_id)
    count_alert("notification_failed", clinic_of(appointment_id))
    log.error("notification failed for good; admin alerted", outbox_id=outbox_id, appointment_id=appointment_id,
              role=role, kind=kind, channel=channel, reason=reason)
    return [alert_outbox_id]


def _finish(ctx: WorkerContext, outbox_id: int, change: Callable[[Any, Any], None]) -> None:
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is not None and message.status == states.OUTBOX_PENDING:
            change(session, message)


def _count(channel: str, role: str, kind: str, outcome: str) -> None:
    metrics.NOTIFICATIONS.labels(channel=channel, role=role, kind=kind, outcome=outcome).inc()
