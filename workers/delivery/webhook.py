"""Outbox rows on the ``webhook`` channel: signed status callbacks to the booking system.

The payload says what happened (``event``: invite, updated, cancelled, started, ended,
...) and where the appointment stands; while the meeting is live and the appointment is
not cancelled it carries the patient's join link. Never a start link, never a patient's
name or contact (the booking system has them; a payload that leaks is then harmless).
A 410 Gone disables the webhook for that URL with exactly one admin alert.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from telemed.store import notifications, outbox, states
from telemed.workers import metrics
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.snapshot import Snapshot
from telemed.workers.notifier.webhook import WebhookChannel

log = structlog.get_logger("telemed.workers")

STATUS_FOR_EVENT = {
    "invite": "scheduled",
    "updated": "scheduled",
    "cancelled": "cancelled",
    "started": "started",
    "ended": "ended",
    "completed": "ended",
}
JOIN_LINK_STATUSES = {"scheduled", "started"}
GONE_REASON = "webhook answered 410 Gone; webhook disabled"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def delivery_id(s: Snapshot) -> str:
    return f"{s.appointment_id}.v{s.version}.{s.kind}"


def webhook_payload(s: Snapshot, now: datetime) -> dict[str, Any]:
    """The callback body (a pure function of the snapshot; see the unit tests)."""
    event = s.template_kind
    status = STATUS_FOR_EVENT.get(event, event)
    if s.desired == states.CANCELLED:
        status = "cancelled"
    live = s.zoom_meeting_id is not None and status in JOIN_LINK_STATUSES
    return {
        "delivery_id": delivery_id(s),
        "event": event,
        "sent_at": _iso(now),
        "appointment": {
            "id": s.appointment_id,
            "version": s.version,
            "current_version": s.current_version,
            "status": status,
            "state": s.state,
            "start_time": _iso(s.start_time),
            "duration_minutes": s.duration_minutes,
            "timezone": s.timezone,
        },
        "meeting": {"zoom_meeting_id": s.zoom_meeting_id, "join_url": s.join_url} if live else None,
    }


def send_webhook(ctx: WorkerContext, s: Snapshot) -> str | tuple[str, str]:
    settings = ctx.settings
    if not settings.webhook_url:
        return ("skipped", "TELEMED_WEBHOOK_URL is not set")
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        log.error("webhook not sent: TELEMED_WEBHOOK_SECRET is not set", outbox_id=s.outbox_id)
        return ("skipped", "TELEMED_WEBHOOK_SECRET is not set")
    with ctx.database.session() as session:
        if notifications.webhook_disabled(session, settings.webhook_url):
            return ("skipped", "webhook disabled after a 410 Gone answer")
    channel = WebhookChannel(settings.webhook_url, settings.webhook_secret.get_secret_value(),
                             settings.webhook_timeout_seconds)
    ref = delivery_id(s)
    channel.send(webhook_payload(s, datetime.now(UTC)), ref)
    return ref


def disable_after_gone(ctx: WorkerContext, outbox_id: int) -> list[int]:
    """Mark the row failed, disable the URL; the first to disable it raises the alert."""
    url = ctx.settings.webhook_url or ""
    follow_ups: list[int] = []
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is not None and message.status == states.OUTBOX_PENDING:
            outbox.mark_attempt_failed(session, message, GONE_REASON, final=True)
        if notifications.disable_webhook(session, url, "410 Gone"):
            subject = "Webhook disabled: the booking system answered 410 Gone"
            body = ("The booking system's webhook answered 410 Gone, which means the endpoint was retired. "
                    "telemed has stopped sending status callbacks to TELEMED_WEBHOOK_URL; later callbacks "
                    "are skipped, not queued.\n\nTo resume: fix or replace the receiver, then run "
                    "`telemed webhook enable` (or configure a new TELEMED_WEBHOOK_URL, which starts enabled).")
            _alert_id, alert_outbox_id = notifications.queue_alert(session, "webhook_disabled", subject, body,
                                                                   message.appointment_id if message else None)
            follow_ups.append(alert_outbox_id)
    if follow_ups:
        metrics.ALERTS.labels(kind="webhook_disabled").inc()
        log.error("webhook disabled after 410 Gone; admin alerted", outbox_id=outbox_id)
    return follow_ups


WEBHOOK_ROLE = "booking"


def owe_webhooks(session: Any, webhook_url: str | None, outbox_ids: list[int]) -> list[int]:
    """For each new patient/doctor notice, owe the booking system the same news.

    Called in the transaction that created the notices, so the callback is exactly as
    durable as the mails. Nothing is owed while no webhook is configured.
    """
    if not webhook_url:
        return []
    ids: list[int] = []
    seen: set[tuple[str, int, str]] = set()
    for outbox_id in outbox_ids:
        notice = outbox.get_message(session, outbox_id)
        if notice is None or notice.channel != "mail" or notice.role not in {"patient", "doctor"}:
            continue
        key = (notice.appointment_id, notice.version, notice.kind)
        if key in seen:
            continue
        seen.add(key)
        message = outbox.add_message(session, appointment_id=notice.appointment_id, version=notice.version,
                                     role=WEBHOOK_ROLE, kind=notice.kind, channel="webhook")
        if message is not None:
            session.flush()
            assert message.id is not None
            ids.append(message.id)
    return ids
