"""Who hosts a doctor's meetings in Zoom, and with which token.

- a doctor who connected their own Zoom: their token, host ``me``;
- otherwise the account (server-to-server) app, host = the doctor's ``zoom_user``;
- neither: :class:`NoZoomHost`; the booking is still accepted, the appointment goes to
  ``needs_attention`` and the admin is told (``workers.meetings.sync``).

An existing meeting is always reached the way it was made: host ``me`` with the doctor's
token, anything else with the account's (``client_for_meeting``).

When a doctor's grant dies (``invalid_grant``), ``RevokingTokenStore`` makes the change in
one transaction: the doctor becomes ``needs_reconnect``, their pending appointments go to
``needs_attention``, and exactly one admin alert (with a fresh connect link) is owed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from telemed.store import appointments, zoom_tokens
from telemed.store.zoom_tokens import CONNECTED, DatabaseTokenStore
from telemed.workers import alerts
from telemed.workers.context import WorkerContext
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomGrantRevoked
from telemed.zoom.user_tokens import UserTokenProvider

log = structlog.get_logger("telemed.hosts")
ME = "me"


class NoZoomHost(Exception):
    """No way to schedule this doctor's meetings in Zoom. ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HostChoice:
    mode: str  # doctor | account | reconnect (grant died, nothing else) | none
    host: str | None
    reason: str | None = None


def choose_host(connection: str | None, account_configured: bool, zoom_user: str | None) -> HostChoice:
    """The decision itself, as a plain function."""
    if connection == CONNECTED:
        return HostChoice("doctor", ME)
    if account_configured and zoom_user:
        return HostChoice("account", zoom_user)
    if connection == zoom_tokens.NEEDS_RECONNECT:
        return HostChoice("reconnect", None, "the doctor's Zoom connection was lost and no account app is configured")
    if not account_configured:
        return HostChoice("none", None, "the doctor has not connected Zoom and no account app is configured")
    return HostChoice("none", None, "the doctor has no Zoom user")


def host_choice(ctx: WorkerContext, doctor_id: str) -> HostChoice:
    with ctx.database.session() as session:
        doctor = appointments.get_doctor(session, doctor_id)
        status = zoom_tokens.connection_status(session, doctor_id)
    return host_choice_from(ctx, status, doctor.connection if doctor else None, doctor.zoom_user if doctor else None)


def host_choice_from(
    ctx: WorkerContext, token_status: str | None, doctor_connection: str | None, zoom_user: str | None
) -> HostChoice:
    """The choice from values already read (``workers.meetings.sync`` reads them with the appointment)."""
    # No tokens but a doctor marked needs_reconnect: the app was removed in Zoom and the
    # tokens deleted (the app_deauthorized webhook).
    connection = token_status if token_status is not None else doctor_connection
    return choose_host(connection, ctx.settings.zoom_s2s_configured, zoom_user)


def zoom_for_appointment(
    ctx: WorkerContext, doctor_id: str, choice: HostChoice | None = None
) -> tuple[ZoomClient, str]:
    """(client, host) to create a new meeting for ``doctor_id``; raises NoZoomHost."""
    choice = choice or host_choice(ctx, doctor_id)
    if choice.mode == "doctor":
        return doctor_zoom(ctx, doctor_id), ME
    if choice.mode == "account":
        assert choice.host is not None
        return ctx.zoom, choice.host
    if choice.mode == "reconnect":
        # Already alerted when the grant died; the appointment waits for the reconnect.
        raise ZoomGrantRevoked(f"doctor {doctor_id} must reconnect Zoom")
    raise NoZoomHost(choice.reason or "no Zoom host")


def client_for_meeting(ctx: WorkerContext, doctor_id: str, host: str) -> ZoomClient:
    """The client that can act on a meeting created for ``host`` (e.g. to fetch a start_url)."""
    return doctor_zoom(ctx, doctor_id) if host == ME else ctx.zoom


def quota_key(doctor_id: str, host: str) -> str:
    """Whose daily create/update count a call uses: the Zoom user behind the host."""
    return f"doctor:{doctor_id}" if host == ME else host


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
    with ctx.database.session() as session:
        if not zoom_tokens.mark_needs_reconnect(session, doctor_id, expected_version):
            return False
        parked = zoom_tokens.park_pending_appointments(
            session, doctor_id, f"doctor {doctor_id} must reconnect their Zoom account")
        outbox_id = alerts.raise_alert(
            ctx, "needs_reconnect", f"Doctor {doctor_id} must reconnect Zoom",
            f"Zoom no longer accepts doctor {doctor_id}'s authorization (invalid_grant): the app was "
            f"removed in Zoom, the grant expired, or it was revoked.\n\n"
            f"{len(parked)} pending appointment(s) of theirs now need attention: "
            f"{', '.join(parked) or 'none'}. They resume by themselves once the doctor reconnects.\n\n"
            f"Send the doctor this connect link: {alerts.connect_link_placeholder(doctor_id)}\n"
            f"(or run: telemed doctors connect-link {doctor_id})",
            session=session,
        )
    alerts.deliver_soon(ctx, outbox_id)
    log.error("doctor must reconnect Zoom", doctor_id=doctor_id, parked=len(parked))
    return True


def doctor_zoom(ctx: WorkerContext, doctor_id: str) -> ZoomClient:
    """A client acting as the doctor (their own OAuth token, host "me"), one per process.

    Each doctor's Zoom account has its own rate limits, so the pacer's scope is theirs.
    """
    s = ctx.settings
    return ctx.doctor_client(doctor_id, lambda: ZoomClient(
        s.zoom_api_url, doctor_token_provider(ctx, doctor_id), timeout=s.zoom_timeout_seconds,
        limiter=ctx.rate_limiter.for_scope(f"doctor:{doctor_id}")))


def doctor_token_provider(
    ctx: WorkerContext, doctor_id: str, *, margin_seconds: float | None = None
) -> UserTokenProvider:
    s = ctx.settings
    if not (s.zoom_oauth_client_id and s.zoom_oauth_client_secret):
        raise NoZoomHost("TELEMED_ZOOM_OAUTH_CLIENT_ID / _SECRET are not set; doctors' own tokens cannot be used")
    return UserTokenProvider(
        doctor_id, RevokingTokenStore(ctx), oauth_url=s.zoom_oauth_url, client_id=s.zoom_oauth_client_id,
        client_secret=s.zoom_oauth_client_secret.get_secret_value(), redis_client=ctx.redis,
        cipher=ctx.cipher, namespace=s.redis_namespace,
        margin_seconds=s.zoom_token_refresh_margin_seconds if margin_seconds is None else margin_seconds,
        timeout=s.zoom_timeout_seconds,
    )
