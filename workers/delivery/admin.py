"""Outbox rows for the administrator (role ``admin``): the alert's text lives in the
``alerts`` table; the row's ``version`` is the alert's id (see ``store.notifications``)."""

from __future__ import annotations

import structlog

from telemed.store import notifications
from telemed.workers.alerts import expand_links
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.snapshot import MAIL_DOMAIN
from telemed.workers.notifier.errors import PermanentDeliveryError
from telemed.workers.notifier.messages import AdminAlert
from telemed.workers.notifier.render import render_admin
from telemed.workers.policy.retries import PermanentFailure

log = structlog.get_logger("telemed.workers")


def send_admin_alert(ctx: WorkerContext, outbox_id: int, alert_id: int, token: str) -> str | tuple[str, str]:
    admin_email = ctx.settings.admin_email
    if not admin_email:
        log.warning("admin alert not mailed: TELEMED_ADMIN_EMAIL is not set", alert_id=alert_id,
                    outbox_id=outbox_id)
        return ("skipped", "TELEMED_ADMIN_EMAIL is not set")
    with ctx.database.session() as session:
        alert = notifications.get_alert(session, alert_id)
        if alert is None:
            raise PermanentFailure("admin outbox row without its alert")
        subject, body = alert.subject, alert.body
    # Alerts name a doctor's connect link by a placeholder; a fresh link is minted now.

    body = expand_links(ctx, body)
    try:
        notice = AdminAlert(subject=subject, body=body, admin_email=admin_email)
    except ValueError as exc:
        raise PermanentDeliveryError(f"admin alert not mailable: {str(exc).split(':')[0]}") from None
    message_id = f"<alert.{alert_id}.{token}@{MAIL_DOMAIN}>"  # the row's token: unique per installation
    ctx.mail.send(render_admin(notice, ctx.settings.mail_from, message_id=message_id))
    return message_id
