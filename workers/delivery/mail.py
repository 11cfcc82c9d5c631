"""Mail to the patient or the doctor: rendered notice, calendar invitation, start link.

The doctor's start link is, in order of preference:

1. with ``TELEMED_PUBLIC_URL``: our signed ``/start/{token}`` link, scoped to this doctor
   and appointment, valid until the appointment ends; it fetches a fresh start_url from
   Zoom when clicked. No Zoom credential is in the mail at all.
2. without it: Zoom's start_url fetched now (it lives about two hours), and a reminder
   shortly before the start brings a fresh one. The disclosure is audited.

Every invite, update and cancellation carries an .ics (same UID per appointment,
SEQUENCE = version) so calendars follow by themselves.

Mail comes from the appointment's clinic: its sender, display name and Reply-To
(``workers.clinic_profiles.sender``; the default clinic's is TELEMED_MAIL_FROM).
"""

from __future__ import annotations

from email.message import Message
from email.utils import parseaddr

from telemed.foundation import join_tokens, start_tokens
from telemed.foundation.tenancy import clinic_of
from telemed.store import notifications
from telemed.workers.clinic_profiles import sender
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.snapshot import Snapshot
from telemed.workers.hosting.start_urls import NoLiveMeeting, fresh_start_url
from telemed.workers.notifier import calendar
from telemed.workers.notifier.errors import MeetingGone
from telemed.workers.notifier.messages import DoctorNotice, MeetingTime, NoticeKind, PatientNotice
from telemed.workers.notifier.render import default_renderer, doctor_context, patient_context
from telemed.zoom.errors import ZoomNotFound

CALENDAR_KINDS = {NoticeKind.INVITE, NoticeKind.UPDATED, NoticeKind.CANCELLED}


def send_mail(ctx: WorkerContext, s: Snapshot, message_id: str) -> str:
    ctx.mail.send(compose(ctx, s, message_id))
    return message_id


def compose(ctx: WorkerContext, s: Snapshot, message_id: str) -> Message:
    """The mail for one outbox row. A patient's mail is checked for host links part by
    part: the text and HTML by ``renderer.patient``, the calendar by ``calendar.attach``
    (which refuses one for every recipient, over the unfolded entry)."""
    kind = NoticeKind(s.template_kind)
    cancelled = kind is NoticeKind.CANCELLED
    time = (
        MeetingTime(start_utc=s.start_time, duration_minutes=s.duration_minutes, timezone=s.timezone)
        if s.start_time is not None and s.duration_minutes is not None
        else None
    )
    renderer = default_renderer()
    gettext = renderer.translations.gettext
    clinic_sender = sender(ctx.profile(clinic_of(s.appointment_id)), ctx.settings)
    mail_from, reply_to = clinic_sender.mail_from, clinic_sender.reply_to
    if s.role == "patient":
        patient = PatientNotice(
            kind=kind, appointment_id=s.appointment_id, version=s.version,
            patient_name=s.patient_name, patient_email=s.patient_email, doctor_name=s.doctor_name,
            clinic_name=s.clinic_name, time=time,
            join_url=None if cancelled else _patient_link(ctx, s), passcode=None if cancelled else s.passcode,
        )
        message = renderer.patient(patient, mail_from, message_id=message_id, reply_to=reply_to)
        context = patient_context(patient, gettext)
        attendee = (s.patient_email, s.patient_name)
        location = patient.join_url
    else:
        start_url, signed = (None, False) if cancelled else _start_link(ctx, s)
        doctor = DoctorNotice(
            kind=kind, appointment_id=s.appointment_id, version=s.version,
            doctor_name=s.doctor_name, doctor_email=s.doctor_email, patient_name=s.patient_name,
            clinic_name=s.clinic_name, time=time, start_url=start_url, start_url_signed=signed,
            join_url=None if cancelled else s.join_url,
        )
        message = renderer.doctor(doctor, mail_from, message_id=message_id, reply_to=reply_to)
        context = doctor_context(doctor, gettext)
        attendee = (s.doctor_email, s.doctor_name)
        location = s.join_url

    if kind in CALENDAR_KINDS:
        summary, description = renderer.calendar_text(s.role, context)
        organizer_name, organizer_email = parseaddr(mail_from)
        invitation = calendar.Invitation(
            appointment_id=s.appointment_id, version=s.version,
            method=calendar.Method.CANCEL if cancelled else calendar.Method.REQUEST,
            start=s.start_time, duration_minutes=s.duration_minutes, summary=summary,
            description=description, location=None if cancelled else location,
            organizer_email=organizer_email, organizer_name=s.clinic_name or organizer_name or "telemed",
            attendee_email=attendee[0], attendee_name=attendee[1],
            uid_domain=organizer_email.rpartition("@")[2] or "telemed.invalid",
        )
        calendar.attach(message, calendar.build_ics(invitation), invitation.method)
    return message


def _patient_link(ctx: WorkerContext, s: Snapshot) -> str | None:
    """With TELEMED_PUBLIC_URL: our signed ``/join/`` link, resolved at click time to the
    patient's current Zoom link; without: their own registrant link (or, when the meeting
    has no registration, its passcode link). Never a host link."""
    public_url = ctx.settings.public_url
    if public_url and s.patient_id and s.zoom_meeting_id is not None:
        token = join_tokens.issue(ctx.settings.fernet_keys, appointment_id=s.appointment_id, patient_id=s.patient_id)
        return join_tokens.link_for(public_url, token)
    return s.patient_link


def _start_link(ctx: WorkerContext, s: Snapshot) -> tuple[str | None, bool]:
    if s.zoom_meeting_id is None:
        return None, False
    public_url = ctx.settings.public_url
    if public_url and s.start_time is not None and s.duration_minutes:
        token = start_tokens.issue(
            ctx.settings.fernet_keys, appointment_id=s.appointment_id, doctor_id=s.doctor_id,
            expires_at=start_tokens.expiry_for(s.start_time, s.duration_minutes),
        )
        return start_tokens.link_for(public_url, token), True
    try:
        url = fresh_start_url(ctx, s.doctor_id, s.zoom_meeting_id, s.host)  # fresh, never stored
    except (ZoomNotFound, NoLiveMeeting) as exc:
        raise MeetingGone("the meeting is no longer in Zoom") from exc
    with ctx.database.session() as session:
        notifications.record_disclosure(session, appointment_id=s.appointment_id, doctor_id=s.doctor_id,
                                        principal=f"doctor:{s.doctor_id}", via=notifications.VIA_MAIL)
    return url, False
