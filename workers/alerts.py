"""Admin alerts raised by the Zoom adapter: logged, counted, and owed to the admins by mail.

``raise_alert`` records the alert (``store.notifications.queue_alert``: an ``alerts`` row
for the text and the clinic it is about, and an outbox row with role ``admin``, kind =
the alert kind, appointment_id = the related appointment or ``-``) and queues its
delivery to that clinic's admins (``workers.delivery.admin``). The clinic is the
appointment's, or the one named; texts show the clinic's own ids (``external_id``), never
a scoped key. The text never holds a secret. A doctor's connect link is a credential, so
an alert names it with a placeholder (``[[connect-link:D-7]]``) and ``expand_links``
mints a fresh link when the mail is rendered; without TELEMED_PUBLIC_URL the placeholder
becomes the command to run.

Kinds raised here (at most 24 characters):

- ``needs_reconnect``   a doctor's Zoom grant died (invalid_grant): once per grant
- ``no_zoom_host``      a booking has no way into Zoom (doctor not connected, no account app)
- ``quota_exhausted``   the host's daily create/update cap is used up and the appointment
                        starts before it resets
- ``policy_mismatch``   Zoom created a meeting whose security settings differ from policy
- ``zoom_refused``      Zoom refused a create/update/delete for good (a permanent 4xx)
- ``orphan_deleted``    the sweep deleted a marked meeting no appointment owns
- ``zoom_app``          a clinic's Zoom account app is missing or refused: once per clinic
                        and cause while its appointments are parked (``workers.meetings.app_failures``)
"""

from __future__ import annotations

import re
from datetime import timedelta

import structlog
from sqlmodel import Session

from telemed.foundation.clinic_label import clinic_label
from telemed.foundation.connect_links import fresh_connect_link
from telemed.foundation.tenancy import DEFAULT_CLINIC, clinic_of, external_id
from telemed.store import notifications
from telemed.workers.context import WorkerContext
from telemed.workers.metrics import ALERTS

log = structlog.get_logger("telemed.alerts")

_LINK = re.compile(r"\[\[connect-link:((?:[a-z0-9-]{1,40}/)?[A-Za-z0-9._:-]{1,128})\]\]")


def connect_link_placeholder(doctor_id: str) -> str:
    return f"[[connect-link:{doctor_id}]]"


def connect_link_command(doctor_id: str) -> str:
    """The command that mints the doctor's connect link, in the clinic's own ids."""
    clinic = clinic_of(doctor_id)
    where = "" if clinic == DEFAULT_CLINIC else f" --clinic {clinic}"
    return f"telemed doctors connect-link{where} {external_id(doctor_id)}"


def raise_alert(
    ctx: WorkerContext,
    kind: str,
    subject: str,
    body: str,
    *,
    appointment_id: str | None = None,
    session: Session | None = None,
    clinic_id: str | None = None,
) -> int:
    """Record and queue an admin alert for the clinic's admins; returns its outbox id.

    The clinic is ``clinic_id``, else the appointment's, else the default clinic. With
    ``session`` the alert joins the caller's transaction (so it exists exactly when the
    state change it reports does) and the caller queues it with ``deliver_soon`` after
    commit; without, it is committed and queued here.
    """
    clinic = clinic_id or (clinic_of(appointment_id) if appointment_id else DEFAULT_CLINIC)
    if session is not None:
        _, outbox_id = notifications.queue_alert(session, kind, subject, body, appointment_id, clinic_id=clinic)
    else:
        with ctx.database.session() as own:
            _, outbox_id = notifications.queue_alert(own, kind, subject, body, appointment_id, clinic_id=clinic)
    count_alert(kind, clinic)
    log.error("admin alert", alert_kind=kind, subject=subject, appointment_id=appointment_id or "-",
              outbox_id=outbox_id, clinic_id=clinic)
    if session is None:
        deliver_soon(ctx, outbox_id)
    return outbox_id


def count_alert(kind: str, clinic_id: str) -> None:
    ALERTS.labels(kind=kind, clinic=clinic_label(clinic_id)).inc()


def deliver_soon(ctx: WorkerContext, outbox_id: int) -> None:
    """Queue the alert's mail now; if that fails the reconciler queues it later."""
    try:
        ctx.queue.deliver_notification(outbox_id)
    except Exception as exc:  # noqa: BLE001  (any broker failure: the reconciler covers it)
        log.warning("alert not queued; the reconciler will", outbox_id=outbox_id, error_type=type(exc).__name__)


def expand_links(ctx: WorkerContext, text: str) -> str:
    """Replace connect-link placeholders with links minted now (for the admin's mail)."""
    settings = ctx.settings

    def link(match: re.Match[str]) -> str:
        doctor_id = match.group(1)
        url = fresh_connect_link(settings.fernet_keys, settings.public_url, doctor_id,
                                 timedelta(seconds=settings.connect_link_ttl_seconds))
        return url or f"(set TELEMED_PUBLIC_URL, then run: {connect_link_command(doctor_id)})"

    return _LINK.sub(link, text)
