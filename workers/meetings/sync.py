"""``sync_meeting``: make Zoom match the appointment's newest desired state.

Level-triggered: it reads the current state and does whatever is missing (create,
update, delete or nothing), so running it twice, late or concurrently is harmless.
A create is preceded by a committed intent; a retry that finds the intent still open
first looks for the meeting the earlier attempt may have made (by its marker).

Zoom side (``workers.hosting.hosts``, ``workers.meetings.zoom_guard``): a new meeting is hosted by the
doctor's own token (host ``me``) or the account app (host = zoom_user), an existing one
is reached the way it was made; every create/update counts against the host's daily cap
first; a meeting whose settings differ from policy raises an alert. A booking nobody can
host, a dead doctor grant, a cap that resets after the start, or a permanent refusal
parks the appointment in ``needs_attention`` with one alert to its clinic's admins.
A clinic-wide cause (its account app missing or refused by Zoom, a host's daily cap)
parks each appointment it stops but alerts the clinic's admins once per cause
(``workers.meetings.app_failures``); other clinics go on.

The parts: ``sync_plan`` reads the plan from the store, ``zoom_steps`` calls Zoom for the
planned action, ``sync_record`` records the result and the notices owed.
"""

from __future__ import annotations

import contextlib

import redis
import structlog
from redis.exceptions import LockError

from telemed.foundation.errors import RetryLater
from telemed.foundation.tenancy import clinic_of, external_id
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import ME, NO_ACCOUNT_APP, NoZoomHost
from telemed.workers.leases import LEASE_TTL_S, renewed
from telemed.workers.meetings import app_failures, zoom_guard, zoom_steps
from telemed.workers.meetings.cancelled_intents import settle_cancelled_intent
from telemed.workers.meetings.sync_plan import SyncOutcome, SyncPlan, read_plan
from telemed.workers.meetings.sync_record import needs_attention, record_sync
from telemed.workers.policy import app_failures as app_policy
from telemed.workers.policy.decisions import SyncAction
from telemed.workers.policy.retries import PermanentFailure
from telemed.zoom.errors import ZoomAuthError, ZoomGrantRevoked, ZoomPermanentError, ZoomRateLimited

log = structlog.get_logger("telemed.workers")
LOCK_TTL_S = LEASE_TTL_S  # renewed while held (workers.leases): a killed holder's lock frees soon
LOCK_WAIT_S = 10
ZOOM_ACTIONS = frozenset({SyncAction.CREATE, SyncAction.UPDATE, SyncAction.REGISTER, SyncAction.REASSIGN,
                          SyncAction.DELETE})


def sync_meeting(ctx: WorkerContext, appointment_id: str) -> SyncOutcome:
    lock = ctx.redis.lock(
        f"{ctx.settings.redis_namespace}:lock:sync:{appointment_id}", timeout=LOCK_TTL_S,
        blocking_timeout=LOCK_WAIT_S,
    )
    if not lock.acquire():
        raise RetryLater("another worker is syncing this appointment", delay_ms=2_000)
    try:
        with renewed(lock):
            return _sync_locked(ctx, appointment_id)
    finally:
        with contextlib.suppress(LockError, redis.RedisError):  # expired or flushed: the TTL frees it
            lock.release()


def _sync_locked(ctx: WorkerContext, appointment_id: str) -> SyncOutcome:
    plan = read_plan(ctx, appointment_id)
    if plan is None:
        raise PermanentFailure("no such appointment")
    log.info("sync planned", appointment_id=appointment_id, version=plan.version, outcome=plan.action.value)
    if plan.action in {SyncAction.CREATE, SyncAction.UPDATE} and zoom_guard.waiting_for_reset(ctx, appointment_id):
        log.info("waiting for the host's daily Zoom quota to reset", appointment_id=appointment_id)
        return SyncOutcome(SyncAction.NOTHING)
    account_hosted = _account_hosted(plan)
    try:
        if (plan.action in ZOOM_ACTIONS and account_hosted
                and app_failures.refused_recently(ctx, clinic_of(appointment_id))):
            raise app_failures.breaker_error()  # Zoom just refused the clinic's app: do not ask again yet
        if plan.action is not SyncAction.CREATE and plan.action is not SyncAction.UPDATE:
            settle_cancelled_intent(ctx, appointment_id)  # a cancel after an ambiguous create
        if plan.action is SyncAction.CREATE:
            return zoom_steps.create(ctx, appointment_id, plan)
        if plan.action is SyncAction.UPDATE:
            return zoom_steps.update(ctx, appointment_id, plan)
        if plan.action is SyncAction.REGISTER:
            return zoom_steps.register(ctx, appointment_id, plan)
        if plan.action is SyncAction.REASSIGN:
            return zoom_steps.reassign(ctx, appointment_id, plan)
        if plan.action is SyncAction.DELETE:
            return zoom_steps.delete(ctx, appointment_id, plan)
        if plan.action is SyncAction.CONFIRM:
            return record_sync(ctx, appointment_id, plan, meeting_change=None)
    except NoZoomHost as exc:
        if exc.cause == NO_ACCOUNT_APP:
            # The clinic has no account app at all: one cause for the whole clinic.
            app_failures.app_missing(ctx, appointment_id)
            return SyncOutcome(SyncAction.NOTHING)
        # The booking stands; a person must connect the doctor or configure the account app.
        shown, doctor = external_id(appointment_id), external_id(plan.doctor_id)
        zoom_guard.park(ctx, appointment_id, "no_zoom_host", f"no Zoom host: {exc.reason}",
                        f"No Zoom host for appointment {shown}",
                        f"Appointment {shown} (doctor {doctor}) was accepted but has no "
                        f"Zoom meeting: {exc.reason}. Connect the doctor's Zoom "
                        f"({alerts.connect_link_command(plan.doctor_id)}) or configure the account app; "
                        "the appointment is then synced again with its next change, or by hand.")
    except ZoomGrantRevoked:
        # The token provider parked the doctor's pending work and alerted once; this one
        # too, whatever its state. Retrying cannot help until the doctor reconnects.
        needs_attention(ctx, appointment_id,
                        f"Zoom connection lost: doctor {external_id(plan.doctor_id)} must reconnect")
    except ZoomRateLimited as exc:
        if not exc.daily:
            raise  # workers.policy.retries: Retry-After, or a short jittered pause
        if not zoom_guard.on_daily_limit(ctx, appointment_id, plan.doctor_id, plan.start_time, exc):
            zoom_guard.hold_until_reset(ctx, appointment_id, exc.retry_after)
            raise  # workers.policy.retries: at the reset (00:00 UTC or Zoom's Retry-After)
    except (ZoomPermanentError, ZoomAuthError) as exc:
        if app_policy.cause_of(exc, account_hosted=account_hosted) == app_policy.REFUSED:
            # The clinic's app itself: parked with the clinic's one alert; not a dead
            # letter, the app's fix resumes it (app_failures.resume_fixed_apps_job).
            app_failures.app_refused(ctx, appointment_id, exc)
            return SyncOutcome(SyncAction.NOTHING)
        shown = external_id(appointment_id)
        zoom_guard.park(ctx, appointment_id, "zoom_refused", f"Zoom refused the {plan.action.value}: {exc}",
                        f"Zoom refused the {plan.action.value} for appointment {shown}",
                        f"Zoom answered the {plan.action.value} of appointment {shown}'s meeting with "
                        f"an error that retrying cannot fix: {exc}. The message is in the dead letters "
                        "(telemed dlq list).")
        raise PermanentFailure(f"Zoom refused the {plan.action.value}: {type(exc).__name__}") from None
    return SyncOutcome(SyncAction.NOTHING)


def _account_hosted(plan: SyncPlan) -> bool:
    """Does this sync talk to Zoom through the clinic's account app (not a doctor's token)?"""
    if plan.action is SyncAction.CREATE:
        return plan.new_host is not None and plan.new_host.mode == "account"
    return bool(plan.host) and plan.host != ME
