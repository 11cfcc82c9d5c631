"""Who hosts a doctor's meetings in Zoom, and with which token.

Everything is the doctor's clinic's (``clinic_of(doctor_id)``): its account app, its OAuth
app, its admins. Never another clinic's, and never the deployment's for another clinic.

- a doctor who connected their own Zoom (through their clinic's OAuth app): their token,
  host ``me``;
- otherwise the clinic's account (server-to-server) app, host = the doctor's ``zoom_user``;
- neither: :class:`NoZoomHost`; the booking is still accepted, the appointment goes to
  ``needs_attention`` and the clinic's admins are told (``workers.meetings.sync``; a
  clinic without any account app is one clinic-wide cause, ``workers.meetings.app_failures``).

An existing meeting is always reached the way it was made: host ``me`` with the doctor's
token, anything else with the clinic's account client (``client_for_meeting``).

When a doctor's grant dies (``invalid_grant``), ``RevokingTokenStore`` makes the change in
one transaction: the doctor becomes ``needs_reconnect``, their pending appointments go to
``needs_attention``, and exactly one admin alert (with a fresh connect link) is owed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from telemed.foundation.tenancy import clinic_of, external_id
from telemed.store import appointments, zoom_tokens
from telemed.store.zoom_tokens import CONNECTED, DatabaseTokenStore
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.zoom.apps import account_app, app_fingerprint, oauth_app
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomGrantRevoked
from telemed.zoom.user_tokens import UserTokenProvider

log = structlog.get_logger("telemed.hosts")
ME = "me"


# Why nobody can host: the clinic has no account app at all (one cause for the whole
# clinic), or this doctor lacks something (their own cause).
NO_ACCOUNT_APP = "no_account_app"


class NoZoomHost(Exception):
    """No way to schedule this doctor's meetings in Zoom. ``reason`` is safe to show;
    ``cause`` is ``NO_ACCOUNT_APP`` when the clinic has no account app."""

    def __init__(self, reason: str, cause: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


@dataclass(frozen=True)
class HostChoice:
    mode: str  # doctor | account | reconnect (grant died, nothing else) | none
    host: str | None
    reason: str | None = None
    cause: str | None = None  # for mode "none": NO_ACCOUNT_APP, or None (the doctor's)


def choose_host(connection: str | None, account_configured: bool, zoom_user: str | None) -> HostChoice:
    """The decision itself, as a plain function."""
    if connection == CONNECTED:
        return HostChoice("doctor", ME)
    if account_configured and zoom_user:
        return HostChoice("account", zoom_user)
    if connection == zoom_tokens.NEEDS_RECONNECT:
        return HostChoice("reconnect", None, "the doctor's Zoom connection was lost and no account app is configured")
    if not account_configured:
        return HostChoice("none", None, "the doctor has not connected Zoom and no account app is configured",
                          NO_ACCOUNT_APP)
    return HostChoice("none", None, "the doctor has no Zoom user")


def host_choice(ctx: WorkerContext, doctor_id: str) -> HostChoice:
    with ctx.database.session() as session:
        doctor = appointments.get_doctor(session, doctor_id)
        status = zoom_tokens.connection_status(session, doctor_id)
    return host_choice_from(ctx, status, doctor.connection if doctor else None, doctor.zoom_user if doctor else None,
                            clinic_of(doctor_id))


def host_choice_from(
    ctx: WorkerContext, token_status: str | None, doctor_connection: str | None, zoom_user: str | None,
    clinic_id: str,
) -> HostChoice:
    """The choice from values already read (``workers.meetings.sync`` reads them with the appointment)."""
    # No tokens but a doctor marked needs_reconnect: the app was removed in Zoom and the
    # tokens deleted (the app_deauthorized webhook).
    connection = token_status if token_status is not None else doctor_connection
    return choose_host(connection, account_app(ctx.profile(clinic_id)) is not None, zoom_user)


def zoom_for_appointment(
    ctx: WorkerContext, doctor_id: str, choice: HostChoice | None = None
) -> tuple[ZoomClient, str]:
    """(client, host) to create a new meeting for ``doctor_id``; raises NoZoomHost."""
    choice = choice or host_choice(ctx, doctor_id)
    if choice.mode == "doctor":
        return doctor_zoom(ctx, doctor_id), ME
    if choice.mode == "account":
        assert choice.host is not None
        return ctx.account_client(clinic_of(doctor_id)), choice.host
    if choice.mode == "reconnect":
        # Already alerted when the grant died; the appointment waits for the reconnect.
        raise ZoomGrantRevoked(f"doctor {external_id(doctor_id)} must reconnect Zoom")
    raise NoZoomHost(choice.reason or "no Zoom host", choice.cause)


def client_for_meeting(ctx: WorkerContext, doctor_id: str, host: str) -> ZoomClient:
    """The client that can act on a meeting created for ``host`` (e.g. to fetch a start_url)."""
    return doctor_zoom(ctx, doctor_id) if host == ME else ctx.account_client(clinic_of(doctor_id))


def quota_key(doctor_id: str, host: str, account_scope: str) -> str:
    """Whose daily create/update count a call uses: the Zoom user behind the host, in the
    account Zoom counts it in (the doctor's own for ``me``, else the clinic's account:
    the same e-mail in two clinics' accounts is two Zoom users)."""
    return f"doctor:{doctor_id}" if host == ME else f"{account_scope}|{host}"


def host_quota_key(ctx: WorkerContext, doctor_id: str, host: str) -> str:
    return quota_key(doctor_id, host, ctx.profile(clinic_of(doctor_id)).zoom_account_scope)


# A dying grant -----------------------------------------------------------------------


class RevokingTokenStore(DatabaseTokenStore):
    """The token store for workers: a dead grant parks the doctor's work and alerts once."""

    def __init__(self, ctx: WorkerContext) -> None:
        super().__init__(ctx.database)
        self._ctx = ctx

    def mark_needs_reconnect(self, doctor_id: str, expected_version: int) -> bool:
        return revoke_doctor(self._ctx, doctor_id, expected_version)


def revoke_doctor(ctx: WorkerContext, doctor_id: str, expected_version: int | None = None) -> bool:
    """Mark the doctor needs_reconnect, park their pending appointments, owe one alert.

    True only for the call that made the change, so the alert is raised exactly once.
    """
    shown = external_id(doctor_id)  # the clinic's own id, in what its admins read
    with ctx.database.session() as session:
        if not zoom_tokens.mark_needs_reconnect(session, doctor_id, expected_version):
            return False
        parked = zoom_tokens.park_pending_appointments(
            session, doctor_id, f"doctor {shown} must reconnect their Zoom account")
        outbox_id = alerts.raise_alert(
            ctx, "needs_reconnect", f"Doctor {shown} must reconnect Zoom",
            f"Zoom no longer accepts doctor {shown}'s authorization (invalid_grant): the app was "
            f"removed in Zoom, the grant expired, or it was revoked.\n\n"
            f"{len(parked)} pending appointment(s) of theirs now need attention: "
            f"{', '.join(external_id(a) for a in parked) or 'none'}. They resume by themselves once the doctor "
            f"reconnects.\n\n"
            f"Send the doctor this connect link: {alerts.connect_link_placeholder(doctor_id)}\n"
            f"(or run: {alerts.connect_link_command(doctor_id)})",
            session=session, clinic_id=clinic_of(doctor_id),
        )
    alerts.deliver_soon(ctx, outbox_id)
    log.error("doctor must reconnect Zoom", doctor_id=doctor_id, parked=len(parked))
    return True


def doctor_zoom(ctx: WorkerContext, doctor_id: str) -> ZoomClient:
    """A client acting as the doctor (their own OAuth token, host "me"), one per process.

    Each doctor's Zoom account has its own rate limits, so the pacer's scope is theirs.
    The token refreshes through the doctor's clinic's OAuth app; a changed app builds a
    new client.
    """
    s = ctx.settings
    app = app_fingerprint(oauth_app(ctx.profile(clinic_of(doctor_id))))
    return ctx.doctor_client(doctor_id, app, lambda: ZoomClient(
        s.zoom_api_url, doctor_token_provider(ctx, doctor_id), timeout=s.zoom_timeout_seconds,
        limiter=ctx.rate_limiter.for_scope(f"doctor:{doctor_id}")))


def doctor_token_provider(
    ctx: WorkerContext, doctor_id: str, *, margin_seconds: float | None = None
) -> UserTokenProvider:
    s = ctx.settings
    clinic_id = clinic_of(doctor_id)
    app = oauth_app(ctx.profile(clinic_id))
    if app is None:
        raise NoZoomHost(f"clinic {clinic_id} has no Zoom OAuth app (for the default clinic: "
                         "TELEMED_ZOOM_OAUTH_CLIENT_ID / _SECRET); doctors' own tokens cannot be used")
    return UserTokenProvider(
        doctor_id, RevokingTokenStore(ctx), oauth_url=s.zoom_oauth_url, client_id=app.client_id,
        client_secret=app.client_secret, redis_client=ctx.redis,
        cipher=ctx.cipher, namespace=s.redis_namespace,
        margin_seconds=s.zoom_token_refresh_margin_seconds if margin_seconds is None else margin_seconds,
        timeout=s.zoom_timeout_seconds,
    )
