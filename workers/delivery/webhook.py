"""Outbox rows on the ``webhook`` channel: signed status callbacks to the booking system.

The payload says what happened (``event``: invite, updated, cancelled, started, ended,
...) and where the appointment stands; while the meeting is live and the appointment is
not cancelled it carries the patient's join link. Never a start link, never a patient's
name or contact (the booking system has them; a payload that leaks is then harmless).
A 410 Gone disables the webhook for that URL with exactly one admin alert.

Each clinic has its own webhook (URL and secret, from its profile; the default clinic's
is TELEMED_WEBHOOK_URL / _SECRET); a clinic without a URL is owed none. The payload shows
the clinic's own ids (``external_id``) and its ``clinic_id``, never a scoped key, and
the delivery id of a clinic other than the default starts with its id, so two clinics
sharing one receiver (a booking platform) never fold each other's deliveries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from telemed.foundation.tenancy import DEFAULT_CLINIC, clinic_of, external_id
from telemed.store import notifications, outbox, states
from telemed.workers.alerts import count_alert
from telemed.workers.clinic_profiles import webhook_target
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
    clinic = clinic_of(s.appointment_id)
    where = "" if clinic == DEFAULT_CLINIC else f"{clinic}:"
    return f"{where}{external_id(s.appointment_id)}.v{s.version}.{s.kind}"


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
        "clinic_id": clinic_of(s.appointment_id),
        "appointment": {
            "id": external_id(s.appointment_id),
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
    clinic = clinic_of(s.appointment_id)
    target = webhook_target(ctx.profile(clinic))
    default = clinic == DEFAULT_CLINIC
    if target is None:
        return ("skipped", "TELEMED_WEBHOOK_URL is not set" if default else "the clinic has no webhook URL")
    if target.secret is None:
        what = "TELEMED_WEBHOOK_SECRET is not set" if default else "the clinic's webhook secret is not set"
        log.error(f"webhook not sent: {what}", outbox_id=s.outbox_id)
        return ("skipped", what)
    with ctx.database.session() as session:
        if notifications.webhook_disabled(session, target.url, clinic):
            return ("skipped", "webhook disabled after a 410 Gone answer")
    channel = WebhookChannel(target.url, target.secret, ctx.settings.webhook_timeout_seconds)
    ref = delivery_id(s)
    channel.send(webhook_payload(s, datetime.now(UTC)), ref)
    return ref


def disable_after_gone(ctx: WorkerContext, outbox_id: int) -> list[int]:
    """Mark the row failed, disable the clinic's URL; the first to disable it raises the
    alert (to that clinic's admins)."""
    follow_ups: list[int] = []
    clinic = DEFAULT_CLINIC
    with ctx.database.session() as session:
        message = outbox.get_message(session, outbox_id)
        if message is not None:
            clinic = clinic_of(message.appointment_id)
        if message is not None and message.status == states.OUTBOX_PENDING:
            outbox.mark_attempt_failed(session, message, GONE_REASON, final=True)
        target = webhook_target(ctx.profile(clinic))
        if notifications.disable_webhook(session, target.url if target else "", "410 Gone", clinic):
            default = clinic == DEFAULT_CLINIC
            where = "TELEMED_WEBHOOK_URL" if default else f"clinic {clinic}'s webhook URL"
            enable = "telemed webhook enable" if default else f"telemed webhook enable --clinic {clinic}"
            subject = "Webhook disabled: the booking system answered 410 Gone"
            body = ("The booking system's webhook answered 410 Gone, which means the endpoint was retired. "
                    f"telemed has stopped sending status callbacks to {where}; later callbacks "
                    "are skipped, not queued.\n\nTo resume: fix or replace the receiver, then run "
                    f"`{enable}` (or configure a new URL, which starts enabled).")
            _alert_id, alert_outbox_id = notifications.queue_alert(session, "webhook_disabled", subject, body,
                                                                   message.appointment_id if message else None,
                                                                   clinic_id=clinic)
            follow_ups.append(alert_outbox_id)
    if follow_ups:
        count_alert("webhook_disabled", clinic)
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
