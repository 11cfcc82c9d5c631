"""What ``sync_meeting`` does around its Zoom calls: quotas, policy checks, parking.

- ``reserve_quota``: one create/update against the host's daily cap, before the call;
- ``on_daily_limit``: the cap is used up (ours or Zoom's answer) → retry at 00:00 UTC, or,
  when the appointment starts before then, park it in ``needs_attention``, with one alert
  to the clinic's admins per host (``workers.meetings.app_failures``);
- ``check_policy``: after a create, compare what Zoom made with what we asked; a mismatch
  counts ``telemed_meeting_policy_mismatch_total{setting}`` and alerts the admin;
- ``park``: put an appointment in ``needs_attention`` and alert, once per transition (a
  retried message does not alert twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import structlog

from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import appointments, attention
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import host_quota_key
from telemed.workers.meetings.app_failures import park_for_clinic
from telemed.workers.metrics import POLICY_MISMATCHES
from telemed.workers.policy.app_failures import host_quota
from telemed.zoom import policy
from telemed.zoom.errors import (
    ZoomAuthError,
    ZoomError,
    ZoomPermanentError,
    ZoomRateLimited,
    seconds_until_utc_midnight,
)

log = structlog.get_logger("telemed.workers")


def definitely_not_created(error: ZoomError) -> bool:
    """Did this failed create certainly leave nothing in Zoom?

    Yes for a refusal (429, 401, another 4xx) and for anything raised before the request
    left (our pacer or quota: no status). No for 5xx, timeouts and resets: Zoom may have
    created the meeting and lost the answer, so the retry must look for it.
    """
    if not isinstance(error, (ZoomRateLimited, ZoomAuthError, ZoomPermanentError)):
        return False
    return error.status is None or 300 <= error.status < 500


def quota_resets_too_late(start_time: datetime | None, now: datetime, retry_after: float | None) -> bool:
    """Will the appointment have started before the host's daily quota resets?"""
    if start_time is None:
        return False
    wait = retry_after if retry_after is not None else seconds_until_utc_midnight(now)
    return start_time <= now + timedelta(seconds=wait)


def reserve_quota(ctx: WorkerContext, doctor_id: str, host: str) -> None:
    """Count one create/update for the host today (in the account Zoom counts it in);
    raises the daily ZoomRateLimited."""
    used = ctx.daily_quota.reserve(host_quota_key(ctx, doctor_id, host))
    if used >= ctx.daily_quota.limit * 0.9:
        log.warning("host close to its daily Zoom limit", doctor_id=doctor_id, used=used,
                    limit=ctx.daily_quota.limit)


def note_zoom_limit(ctx: WorkerContext, doctor_id: str, host: str, error: ZoomRateLimited) -> None:
    """Zoom itself said the daily cap is reached: it counted calls we did not (another app)."""
    if error.daily and error.status is not None:
        ctx.daily_quota.exhaust(host_quota_key(ctx, doctor_id, host))


def give_back_unsent(ctx: WorkerContext, doctor_id: str, host: str, error: ZoomError) -> None:
    """Our own pacer stopped the call before it left (a deferral, or its longest wait):
    the host's daily count reserved for it is given back, or every deferral would spend one."""
    if isinstance(error, ZoomRateLimited) and error.status is None and not error.daily:
        ctx.daily_quota.release(host_quota_key(ctx, doctor_id, host))


def on_daily_limit(
    ctx: WorkerContext, appointment_id: str, doctor_id: str, start_time: datetime | None,
    error: ZoomRateLimited,
) -> bool:
    """True when the appointment was parked; False: retry when the quota resets."""
    now = datetime.now(UTC)
    if not quota_resets_too_late(start_time, now, error.retry_after):
        return False
    reset = now + timedelta(seconds=error.retry_after or seconds_until_utc_midnight(now))
    # One alert per host while its appointments wait, not one per appointment.
    park_for_clinic(ctx, appointment_id, host_quota(clinic_of(appointment_id), external_id(doctor_id), reset))
    return True


def _wait_key(ctx: WorkerContext, appointment_id: str) -> str:
    return f"{ctx.settings.redis_namespace}:zoom:daily-wait:{appointment_id}"


def hold_until_reset(ctx: WorkerContext, appointment_id: str, seconds: float | None) -> None:
    """The appointment's retry is scheduled for the quota reset: until then, passes queued
    by the reconciler return at once instead of each scheduling another retry."""
    with contextlib.suppress(redis.RedisError):
        ctx.redis.set(_wait_key(ctx, appointment_id), "1", ex=max(1, int(seconds or 0)))


def waiting_for_reset(ctx: WorkerContext, appointment_id: str) -> bool:
    try:
        return bool(ctx.redis.exists(_wait_key(ctx, appointment_id)))
    except redis.RedisError:
        return False


def check_policy(
    ctx: WorkerContext, appointment_id: str, requested: Mapping[str, Any], created: Mapping[str, Any],
    *, adopted: bool,
) -> list[str]:
    """Compare the meeting Zoom returned with our request; count and alert on mismatches."""
    wanted = dict(requested)
    if adopted:
        # An adopted meeting was made by an earlier attempt with its own passcode and maybe
        # an older schedule (the next pass updates that); only its security is compared.
        wanted.pop("start_time", None)
        wanted.pop("duration", None)
        if created.get("password"):
            wanted["password"] = created["password"]
    mismatches = policy.check_settings(wanted, created)
    if not mismatches:
        return []
    for problem in mismatches:
        POLICY_MISMATCHES.labels(setting=problem.split(":", 1)[0]).inc()
    log.error("meeting settings differ from policy", appointment_id=appointment_id,
              zoom_meeting_id=created.get("id"), mismatches=mismatches)
    shown = external_id(appointment_id)
    alerts.raise_alert(
        ctx, "policy_mismatch", f"Zoom meeting for {shown} differs from the security policy",
        f"The Zoom meeting {created.get('id')} for appointment {shown} was created with settings "
        "that differ from what telemed asked for (an account-level lock in Zoom may override them):\n\n"
        + "\n".join(f"- {m}" for m in mismatches)
        + "\n\nCheck the account's meeting settings in Zoom's admin console.",
        appointment_id=appointment_id,
    )
    return mismatches


def park(ctx: WorkerContext, appointment_id: str, kind: str, reason: str, subject: str, body: str) -> bool:
    """needs_attention with ``reason``, and one alert if this call made the change."""
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id, for_update=True)
        if appointment is None:
            return False
        changed = attention.mark_needs_attention(session, appointment, reason)
        outbox_id = (
            alerts.raise_alert(ctx, kind, subject, body, appointment_id=appointment_id, session=session)
            if changed else None
        )
    if outbox_id is not None:
        alerts.deliver_soon(ctx, outbox_id)
    log.error("appointment needs attention", appointment_id=appointment_id, reason=reason, alerted=changed)
    return changed
