"""Role-filtered notifications: notice types, templates, rendering and mail channels."""

from telemed.workers.notifier.mail import (
    DeliveryError,
    EmlDirectoryChannel,
    MailChannel,
    PermanentDeliveryError,
    SmtpChannel,
    TransientDeliveryError,
    build_mail_channel,
)
from telemed.workers.notifier.messages import (
    AdminAlert,
    DoctorNotice,
    MeetingTime,
    NoticeKind,
    PatientNotice,
)
from telemed.workers.notifier.render import MailRenderer, render_admin, render_doctor, render_patient

__all__ = [
    "AdminAlert",
    "DeliveryError",
    "DoctorNotice",
    "EmlDirectoryChannel",
    "MailChannel",
    "MailRenderer",
    "MeetingTime",
    "NoticeKind",
    "PatientNotice",
    "PermanentDeliveryError",
    "SmtpChannel",
    "TransientDeliveryError",
    "build_mail_channel",
    "render_admin",
    "render_doctor",
    "render_patient",
]
