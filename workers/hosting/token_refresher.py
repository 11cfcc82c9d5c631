"""Scheduler job: refresh connected doctors' Zoom tokens before they expire, busy or idle.

A doctor whose meetings are being synced gets a fresh token on use; an idle one would
otherwise reach the next start-link click or booking with an expired access token (and,
after 90 days unused, a dead refresh token). The job renews every connected token due
within the refresh margin plus two scheduler passes, through the same single-flight
provider the workers use, so it never races them. A dead grant found here is handled
like one found by a worker: needs_reconnect, parked appointments, one alert. Each doctor's
token refreshes through their clinic's OAuth app; a doctor whose clinic has none is skipped.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from telemed.foundation.tenancy import UnknownClinic, clinic_of
from telemed.store import zoom_tokens
from telemed.store.models import utcnow
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.hosts import NoZoomHost, doctor_token_provider
from telemed.zoom.apps import oauth_app
from telemed.zoom.errors import ZoomError, ZoomGrantRevoked

log = structlog.get_logger("telemed.scheduler")


def refresh_tokens_job(ctx: WorkerContext) -> dict[str, int]:
    settings = ctx.settings
    lookahead = settings.zoom_token_refresh_margin_seconds + 2 * settings.scheduler_interval_seconds
    with ctx.database.session() as session:
        due = zoom_tokens.due_for_refresh(session, before=utcnow() + timedelta(seconds=lookahead))
    report = {"tokens_refreshed": 0, "tokens_revoked": 0, "token_refresh_failed": 0}
    for doctor_id in due:
        try:
            if oauth_app(ctx.profile(clinic_of(doctor_id))) is None:
                continue  # the clinic has no OAuth app (any more): nothing to refresh through
        except UnknownClinic:
            continue
        try:
            provider = doctor_token_provider(ctx, doctor_id, margin_seconds=lookahead)
            if provider.refresh_if_due():
                report["tokens_refreshed"] += 1
        except ZoomGrantRevoked:
            report["tokens_revoked"] += 1
        except (ZoomError, NoZoomHost) as exc:
            report["token_refresh_failed"] += 1
            log.warning("token refresh failed; the next pass retries", doctor_id=doctor_id,
                        error_type=type(exc).__name__)
    return report
