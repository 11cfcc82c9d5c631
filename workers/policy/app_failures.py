"""Failures that belong to a whole clinic, not to one appointment: plain decisions and texts.

A clinic's Zoom account app that is missing (no credentials), refused by Zoom (revoked,
wrong secret, wrong account id, missing scopes), or a host's daily quota used up, stops
every appointment it touches. Each such appointment is parked in ``needs_attention``
with a reason that starts with the cause's ``prefix`` (naming the clinic and its app's
client id, never a secret), and the clinic's admins get ONE alert per cause: the first
appointment parked for it raises it, the others join it (``workers.meetings.app_failures``).
Other clinics are not touched: their apps, tokens, pacers and quotas are their own.

Whether a failure is such a cause is decided here (``cause_of``); whether and when a
failure is retried stays ``workers.policy.retries``'s call (a refused app is a
``PermanentError``: the message stops, the appointment waits parked, and a fixed app
resumes it, ``workers.meetings.app_failures.resume_fixed_apps_job``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.zoom.errors import ZoomAppRefused, ZoomAuthError, ZoomGrantRevoked

MISSING = "missing"  # the clinic has no (complete) account app
REFUSED = "refused"  # Zoom refused the app: token endpoint or the API's 401

ZOOM_APP_KIND = "zoom_app"
QUOTA_KIND = "quota_exhausted"


@dataclass(frozen=True)
class ClinicCause:
    """One clinic-wide cause: how its appointments are parked and what its admins read."""

    clinic_id: str
    kind: str  # the alert's kind
    prefix: str  # every reason parked for this cause starts with it
    detail: str  # the rest of this appointment's reason
    subject: str
    body: str  # the alert's text, before the list of parked appointments

    @property
    def reason(self) -> str:
        return f"{self.prefix}: {self.detail}"


def digest(text: str) -> str:
    """A short tag of a cause's prefix, for a Redis key that names no doctor or host."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def app_prefix(clinic_id: str) -> str:
    """What every reason of a clinic's account-app failure starts with (missing or refused)."""
    return f"the Zoom account app of clinic '{clinic_id}'"


def _configure_hint(clinic_id: str) -> str:
    if clinic_id == DEFAULT_CLINIC:
        return ("set TELEMED_ZOOM_ACCOUNT_ID, TELEMED_ZOOM_CLIENT_ID and TELEMED_ZOOM_CLIENT_SECRET "
                "(or the default clinic's row: telemed clinics update default ...)")
    return f"update the clinic's Zoom app (telemed clinics update {clinic_id}, or the admin page)"


def app_missing(clinic_id: str) -> ClinicCause:
    prefix = f"{app_prefix(clinic_id)} is not configured"
    return ClinicCause(
        clinic_id, ZOOM_APP_KIND, prefix,
        "no server-to-server credentials, and the doctor has not connected their own Zoom",
        f"Clinic {clinic_id}: no Zoom account app, appointments are waiting",
        f"Clinic {clinic_id} has no Zoom server-to-server app configured, so telemed cannot create "
        "meetings for its doctors who have not connected their own Zoom. Their appointments were accepted "
        "and wait in needs_attention.\n\nTo fix it, " + _configure_hint(clinic_id) + ". The waiting "
        "appointments resume by themselves within a scheduler pass or two once the app is configured "
        "(or connect the doctors' own Zoom).",
    )


def app_refused(clinic_id: str, client_id: str, why: str) -> ClinicCause:
    """``why``: Zoom's short answer (safe to show: ``ZoomError`` messages are scrubbed)."""
    prefix = f"{app_prefix(clinic_id)} (client id {client_id}) was refused by Zoom"
    return ClinicCause(
        clinic_id, ZOOM_APP_KIND, prefix, why,
        f"Clinic {clinic_id}: Zoom refused its Zoom app, appointments are waiting",
        f"Zoom refused clinic {clinic_id}'s server-to-server app (client id {client_id}): {why}.\n\n"
        "The app was deactivated or removed in the Zoom Marketplace, its secret was regenerated, the "
        "account id is wrong, or it lacks the meeting scopes. Until it works again no meeting of this "
        "clinic can be created or changed; its appointments wait in needs_attention (other clinics are "
        "not affected).\n\nTo fix it, reactivate the app in Zoom or " + _configure_hint(clinic_id) + ". "
        "Waiting appointments resume by themselves once the credentials change, or within 15 minutes of "
        "the app working again.",
    )


def host_quota(clinic_id: str, doctor: str, reset: datetime) -> ClinicCause:
    """``doctor``: the clinic's own id of the doctor whose Zoom host used up its daily cap."""
    prefix = f"the daily create/update limit of doctor {doctor}'s Zoom host"
    return ClinicCause(
        clinic_id, QUOTA_KIND, prefix,
        f"used up until {reset:%Y-%m-%d %H:%M} UTC, after the appointment starts",
        f"Daily Zoom limit reached for doctor {doctor}",
        f"Doctor {doctor}'s Zoom host has used its meeting create/update calls for today (UTC); the limit "  # noqa: S608  # nosec B608 - mail text, not SQL
        f"resets at {reset:%Y-%m-%d %H:%M} UTC. Appointments that start before then could not get their "
        "meeting set up or changed in time. Create or move those meetings by hand in Zoom, or reschedule.",
    )


def cause_of(error: BaseException, *, account_hosted: bool) -> str | None:
    """``REFUSED`` when ``error`` says the clinic's account app itself is refused; None
    for anything else (a doctor's own token, one meeting's problem, an outage)."""
    if isinstance(error, ZoomAppRefused):
        return REFUSED
    if isinstance(error, ZoomGrantRevoked) or not isinstance(error, ZoomAuthError):
        return None
    # A 401 other than "token expired" from the account client: the app's token is not
    # accepted for the call (missing scopes, a deactivated app): the app's, not the meeting's.
    return REFUSED if account_hosted and error.status == 401 and not error.token_rejected else None
