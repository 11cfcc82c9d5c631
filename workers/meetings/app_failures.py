"""A clinic's Zoom app failing: park only that clinic's appointments, alert its admins once,
stop asking Zoom for a while, and resume when the app is fixed.

- ``park_for_clinic``: the appointment goes to ``needs_attention`` with the cause's
  reason; the first appointment parked for a cause raises the clinic's one alert, the
  others join it (decided under a short Redis lock per clinic and cause, from the store:
  "is another appointment of this clinic parked for it?"). A retried message, or a
  thousand bookings of the clinic, add no alert.
- ``app_refused``: the same for a refused app, and a breaker: for ``BREAKER_SECONDS`` the
  clinic's next syncs park at once instead of asking Zoom's token endpoint again (it
  just said no; 5,000 queued bookings must not each ask). The breaker names the app's
  credentials by their fingerprint, so changed credentials are tried at once.
- ``resume_fixed_apps_job`` (a scheduler job): for each clinic with appointments parked
  because of its app, resume them (back to ``pending``, and queued) when the clinic's
  credentials changed since the failure, or when a probe (one token request every
  ``PROBE_SECONDS``) finds the same app accepted again (reactivated in Zoom).

The failure record and the breaker live in Redis (``{ns}:zoom:app-failure:{clinic}``,
``{ns}:zoom:app-refused:{clinic}``); the store stays the truth: what is parked, and why,
is in the appointments. Losing Redis only means a probe (and, if the app still fails,
one more alert) sooner.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis
import structlog
from redis.exceptions import LockError

from telemed.foundation.errors import RetryLater
from telemed.foundation.tenancy import UnknownClinic, clinic_of, external_id
from telemed.store import appointments, attention, states
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.workers.policy import app_failures as policy
from telemed.workers.policy.app_failures import ClinicCause
from telemed.zoom.apps import account_app, app_fingerprint
from telemed.zoom.errors import ZoomAppRefused, ZoomError

log = structlog.get_logger("telemed.workers")

BREAKER_SECONDS = 300
PROBE_SECONDS = 900
FAILURE_RECORD_SECONDS = 30 * 24 * 3600
LOCK_SECONDS = 30
LOCK_WAIT_SECONDS = 10


def _failure_key(ctx: WorkerContext, clinic_id: str) -> str:
    return f"{ctx.settings.redis_namespace}:zoom:app-failure:{clinic_id}"


def _breaker_key(ctx: WorkerContext, clinic_id: str) -> str:
    return f"{ctx.settings.redis_namespace}:zoom:app-refused:{clinic_id}"


def _lock_key(ctx: WorkerContext, cause: ClinicCause) -> str:
    return f"{ctx.settings.redis_namespace}:lock:clinic-cause:{cause.clinic_id}:{policy.digest(cause.prefix)}"


# Parking ----------------------------------------------------------------------------------


def park_for_clinic(ctx: WorkerContext, appointment_id: str, cause: ClinicCause) -> bool:
    """Park the appointment for a clinic-wide cause; True when this call raised the alert."""
    lock = ctx.redis.lock(_lock_key(ctx, cause), timeout=LOCK_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS)
    if not lock.acquire():
        raise RetryLater("another worker is parking this clinic's appointments", delay_ms=1_000)
    outbox_id: int | None = None
    try:
        with ctx.database.session() as session:
            appointment = appointments.get_appointment(session, appointment_id, for_update=True)
            if appointment is None:
                return False
            already = (appointment.state == states.NEEDS_ATTENTION
                       and (appointment.attention_reason or "").startswith(cause.prefix))
            others = attention.parked_with(session, cause.clinic_id, cause.prefix, except_id=appointment_id, limit=1)
            attention.mark_needs_attention(session, appointment, cause.reason)
            if not already and not others:
                body = (f"{cause.body}\n\nFirst appointment waiting: {external_id(appointment_id)}. Others of this "
                        "clinic stopped by the same cause join it without another alert (the admin page lists "
                        "them, as does `telemed status`).")
                outbox_id = alerts.raise_alert(ctx, cause.kind, cause.subject, body, appointment_id=appointment_id,
                                               session=session, clinic_id=cause.clinic_id)
    finally:
        with contextlib.suppress(LockError, redis.RedisError):  # expired or flushed: the TTL frees it
            lock.release()
    if outbox_id is not None:
        alerts.deliver_soon(ctx, outbox_id)
    log.error("appointment needs attention: a clinic-wide cause", appointment_id=appointment_id,
              clinic_id=cause.clinic_id, alert_kind=cause.kind, alerted=outbox_id is not None)
    return outbox_id is not None


def app_missing(ctx: WorkerContext, appointment_id: str) -> bool:
    clinic_id = clinic_of(appointment_id)
    _record_failure(ctx, clinic_id, policy.MISSING, app_fingerprint(None))
    return park_for_clinic(ctx, appointment_id, policy.app_missing(clinic_id))


def app_refused(ctx: WorkerContext, appointment_id: str, error: ZoomError) -> bool:
    """Zoom refused the clinic's account app: breaker on, failure recorded, appointment parked."""
    clinic_id = clinic_of(appointment_id)
    app = account_app(ctx.profile(clinic_id))
    fingerprint = app_fingerprint(app)
    with contextlib.suppress(redis.RedisError):  # without the breaker the next sync just asks Zoom again
        ctx.redis.set(_breaker_key(ctx, clinic_id), fingerprint, ex=BREAKER_SECONDS)
    _record_failure(ctx, clinic_id, policy.REFUSED, fingerprint)
    cause = policy.app_refused(clinic_id, app.client_id if app else "-", str(error))
    return park_for_clinic(ctx, appointment_id, cause)


def refused_recently(ctx: WorkerContext, clinic_id: str) -> bool:
    """Did Zoom refuse the clinic's current app credentials within the breaker's time?"""
    try:
        held = ctx.redis.get(_breaker_key(ctx, clinic_id))
    except redis.RedisError:
        return False
    if held is None:
        return False
    current = app_fingerprint(account_app(ctx.profile(clinic_id)))
    return (held.decode() if isinstance(held, bytes) else str(held)) == current


def breaker_error() -> ZoomAppRefused:
    return ZoomAppRefused("refused moments ago; not asked again yet", status=401)


def _record_failure(ctx: WorkerContext, clinic_id: str, cause: str, fingerprint: str) -> None:
    """Remember which credentials failed (kept while they are the same, so ``since`` is the
    first failure's): the resume job compares them with the profile's."""
    record = _read_failure(ctx, clinic_id)
    if record is not None and record.get("fp") == fingerprint and record.get("cause") == cause:
        return
    now = time.time()
    value = json.dumps({"fp": fingerprint, "cause": cause, "since": now, "probed": now})
    with contextlib.suppress(redis.RedisError):
        ctx.redis.set(_failure_key(ctx, clinic_id), value, ex=FAILURE_RECORD_SECONDS)


def _read_failure(ctx: WorkerContext, clinic_id: str) -> dict[str, Any] | None:
    try:
        raw = ctx.redis.get(_failure_key(ctx, clinic_id))
    except redis.RedisError:
        return None
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


# Resuming ---------------------------------------------------------------------------------


def resume_fixed_apps_job(ctx: WorkerContext) -> dict[str, int]:
    """Resume the appointments of every clinic whose Zoom app works again (scheduler job)."""
    report = {"clinics_resumed": 0, "appointments_resumed": 0}
    for clinic_id in ctx.clinics.clinic_ids():
        try:
            resumed = resume_if_fixed(ctx, clinic_id)
        except (UnknownClinic, redis.RedisError) as exc:
            log.warning("clinic not checked for a fixed Zoom app", clinic_id=clinic_id, error_type=type(exc).__name__)
            continue
        if resumed:
            report["clinics_resumed"] += 1
            report["appointments_resumed"] += len(resumed)
    return report


def resume_if_fixed(ctx: WorkerContext, clinic_id: str, *, now: float | None = None) -> list[str]:
    """The clinic's appointments resumed now (none when its app still fails, or none wait)."""
    prefix = policy.app_prefix(clinic_id)
    with ctx.database.session() as session:
        waiting = attention.parked_with(session, clinic_id, prefix, limit=1)
    if not waiting:
        return []
    app = account_app(ctx.profile(clinic_id))
    if app is None:
        return []  # still no app: nothing to try (a connected doctor's appointment resumes with its next change)
    fingerprint = app_fingerprint(app)
    record = _read_failure(ctx, clinic_id)
    now = time.time() if now is None else now
    if record is not None and record.get("fp") == fingerprint:
        # The same credentials that failed: ask Zoom once in a while whether they work again.
        due = now - float(record.get("probed") or 0) >= PROBE_SECONDS
        if not (due and _probe(ctx, clinic_id, record, now)):
            return []
    resumed = _resume(ctx, clinic_id, prefix)
    log.warning("clinic's Zoom app works again: its parked appointments resume", clinic_id=clinic_id,
                count=len(resumed))
    return resumed


def _probe(ctx: WorkerContext, clinic_id: str, record: dict[str, Any], now: float) -> bool:
    record = {**record, "probed": now}
    with contextlib.suppress(redis.RedisError):
        ctx.redis.set(_failure_key(ctx, clinic_id), json.dumps(record), ex=FAILURE_RECORD_SECONDS)
    provider = ctx.account_tokens(ctx.profile(clinic_id))
    try:
        provider.access_token()
    except ZoomError as exc:
        log.info("clinic's Zoom app still refused", clinic_id=clinic_id, error_type=type(exc).__name__)
        return False
    return True


def _resume(ctx: WorkerContext, clinic_id: str, prefix: str) -> list[str]:
    with ctx.database.session() as session:
        resumed = attention.resume_parked(session, clinic_id, prefix)
    with contextlib.suppress(redis.RedisError):
        ctx.redis.delete(_breaker_key(ctx, clinic_id), _failure_key(ctx, clinic_id))
    for appointment_id in resumed:
        try:
            ctx.queue.sync_meeting(appointment_id)
        except Exception as exc:  # noqa: BLE001  (pending now: the reconciler queues it)
            log.warning("resumed appointment not queued; the reconciler will", appointment_id=appointment_id,
                        error_type=type(exc).__name__)
    return resumed
