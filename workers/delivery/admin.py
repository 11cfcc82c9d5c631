"""Outbox rows for the administrators (role ``admin``): the alert's text lives in the
``alerts`` table; the row's ``version`` is the alert's id (see ``store.notifications``).

An alert goes to the admins of the clinic it is about (``Alert.clinic_id``): the clinic's
``admin_emails``, the default clinic's TELEMED_ADMIN_EMAIL. Never to another clinic's
admins or the deployment's, so a clinic without admins gets its alerts recorded (the admin
page shows them) but not mailed. The mail comes from the clinic's sender.
"""

from __future__ import annotations

import structlog

from telemed.foundation.tenancy import DEFAULT_CLINIC, UnknownClinic
from telemed.store import notifications
from telemed.workers.alerts import expand_links
from telemed.workers.clinic_profiles import admin_recipients, sender
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.snapshot import MAIL_DOMAIN
from telemed.workers.notifier.errors import PermanentDeliveryError
from telemed.workers.notifier.messages import AdminAlert
from telemed.workers.notifier.render import render_admin
from telemed.workers.policy.retries import PermanentFailure

log = structlog.get_logger("telemed.workers")


def send_admin_alert(ctx: WorkerContext, outbox_id: int, alert_id: int, token: str) -> str | tuple[str, str]:
    with ctx.database.session() as session:
        alert = notifications.get_alert(session, alert_id)
        if alert is None:
            raise PermanentFailure("admin outbox row without its alert")
        subject, body, clinic_id = alert.subject, alert.body, alert.clinic_id
    structlog.contextvars.bind_contextvars(clinic_id=clinic_id)
    try:
        profile = ctx.profile(clinic_id)
    except UnknownClinic:
        return ("skipped", "the clinic no longer exists")
    admins = admin_recipients(profile)
    if not admins:
        what = "TELEMED_ADMIN_EMAIL is not set" if clinic_id == DEFAULT_CLINIC else "the clinic has no admin e-mail"
        log.warning(f"admin alert not mailed: {what}", alert_id=alert_id, outbox_id=outbox_id)
        return ("skipped", what)
    # Alerts name a doctor's connect link by a placeholder; a fresh link is minted now.

    body = expand_links(ctx, body)
    try:
        notice = AdminAlert(subject=subject, body=body, admin_email=admins[0], also_to=admins[1:])
    except ValueError as exc:
        raise PermanentDeliveryError(f"admin alert not mailable: {str(exc).split(':')[0]}") from None
    message_id = f"<alert.{alert_id}.{token}@{MAIL_DOMAIN}>"  # the row's token: unique per installation
    ctx.mail.send(render_admin(notice, sender(profile, ctx.settings).mail_from, message_id=message_id))
    return message_id
