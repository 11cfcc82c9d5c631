"""Admin alerts raised by the Zoom adapter: logged, counted, and owed to the admin by mail.

``raise_alert`` records the alert (``store.notifications.queue_alert``: an ``alerts`` row
for the text and an outbox row with role ``admin``, kind = the alert kind, appointment_id
= the related appointment or ``-``) and queues its delivery. The text never holds a
secret. A doctor's connect link is a credential, so an alert names it with a placeholder
(``[[connect-link:D-7]]``) and ``expand_links`` mints a fresh link when the mail is
rendered; without TELEMED_PUBLIC_URL the placeholder becomes the command to run.

Kinds raised here (at most 24 characters):

- ``needs_reconnect``   a doctor's Zoom grant died (invalid_grant): once per grant
- ``no_zoom_host``      a booking has no way into Zoom (doctor not connected, no account app)
- ``quota_exhausted``   the host's daily create/update cap is used up and the appointment
                        starts before it resets
- ``policy_mismatch``   Zoom created a meeting whose security settings differ from policy
- ``zoom_refused``      Zoom refused a create/update/delete for good (a permanent 4xx)
- ``orphan_deleted``    the sweep deleted a marked meeting no appointment owns
"""

from __future__ import annotations

import re
from datetime import timedelta

import structlog
from sqlmodel import Session

from telemed.foundation.connect_links import fresh_connect_link
from telemed.store import notifications
from telemed.workers.context import WorkerContext
from telemed.workers.metrics import ALERTS

log = structlog.get_logger("telemed.alerts")

_LINK = re.compile(r"\[\[connect-link:([A-Za-z0-9._:-]{1,128})\]\]")


def connect_link_placeholder(doctor_id: str) -> str:
    return f"[[connect-link:{doctor_id}]]"


def raise_alert(
    ctx: WorkerContext,
    kind: str,
    subject: str,
    body: str,
    *,
    appointment_id: str | None = None,
    session: Session | None = None,
) -> int:
    """Record and queue an admin alert; returns its outbox id.

    With ``session`` the alert joins the caller's transaction (so it exists exactly when
    the state change it reports does) and the caller queues it with ``deliver_soon``
    after commit; without, it is committed and queued here.
    """
    if session is not None:
        _, outbox_id = notifications.queue_alert(session, kind, subject, body, appointment_id)
    else:
        with ctx.database.session() as own:
            _, outbox_id = notifications.queue_alert(own, kind, subject, body, appointment_id)
    ALERTS.labels(kind=kind).inc()
    log.error("admin alert", alert_kind=kind, subject=subject, appointment_id=appointment_id or "-",
              outbox_id=outbox_id)
    if session is None:
        deliver_soon(ctx, outbox_id)
    return outbox_id


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
        return url or f"(set TELEMED_PUBLIC_URL, then run: telemed doctors connect-link {doctor_id})"

    return _LINK.sub(link, text)
