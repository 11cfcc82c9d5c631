"""Rendering notices into mail: content, links per role, local times, escaping, i18n."""

from __future__ import annotations

import gettext
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader

from tests.unit.test_notifier_messages import JOIN, START, TIME, doctor, patient
from workers.notifier.messages import AdminAlert, MeetingTime, NoticeKind
from workers.notifier.render import (
    MailRenderer,
    RenderError,
    render_admin,
    render_doctor,
    render_patient,
)

FROM = "telemed <no-reply@telemed.example>"
WHEN = "Thursday, 3 December 2026, 09:30–10:00 (Europe/Berlin)"


def parts(message: EmailMessage) -> dict[str, str]:
    """Decoded text of each leaf part by content type (transfer encoding undone)."""
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }


def everything(message: EmailMessage) -> str:
    """Headers, raw bytes and decoded parts: wherever a link could hide."""
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    return "\n".join([headers, message.as_string(), *parts(message).values()])


def assert_no_host_link(message: EmailMessage) -> None:
    text = everything(message).lower()
    assert "zak=" not in text and "zak=3d" not in text
    assert "/s/" not in text


# --- structure ----------------------------------------------------------------------------


def test_messages_are_multipart_alternative_with_ids_and_no_links_in_headers() -> None:
    for message in (
        render_patient(patient(), FROM),
        render_doctor(doctor(), FROM),
        render_admin(AdminAlert("Quota", "body", "admin@clinic.example"), FROM),
    ):
        assert message.get_content_type() == "multipart/alternative"
        assert list(parts(message)) == ["text/plain", "text/html"]
        assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(
            "@telemed.example>"
        )
        assert message["From"] == FROM
        assert message["Date"]
        assert message["Auto-Submitted"] == "auto-generated"
        for name, value in message.items():
            assert "://" not in str(value), name
            assert "zak" not in str(value).lower(), name


def test_caller_may_fix_the_message_id() -> None:
    message = render_patient(
        patient(), FROM, message_id="<A-1001.v1.patient.invite@telemed.example>"
    )
    assert message["Message-ID"] == "<A-1001.v1.patient.invite@telemed.example>"
    with pytest.raises(RenderError):
        render_patient(patient(), FROM, message_id="not an id")


def test_bad_sender_is_refused() -> None:
    with pytest.raises(RenderError, match="mail_from"):
        render_patient(patient(), "nobody")
    with pytest.raises(RenderError, match="mail_from"):
        render_patient(patient(), "a@b.example\r\nBcc: x@y.example")


def test_a_link_in_a_name_never_reaches_a_header() -> None:
    with pytest.raises(RenderError, match="Subject"):
        render_patient(patient(doctor_name="Dr. https://evil.example"), FROM)


# --- patient ------------------------------------------------------------------------------


def test_patient_invite_has_join_link_passcode_and_local_time() -> None:
    message = render_patient(patient(), FROM)
    assert message["To"] == "Grace Hopper <grace@example.org>"
    assert message["Subject"] == (
        "Your video appointment with Dr. Ada Lovelace on "
        "Thursday, 3 December 2026, 09:30 (Europe/Berlin)"
    )
    text, html = parts(message)["text/plain"], parts(message)["text/html"]
    for body in (text, html):
        assert JOIN in body
        assert "Xy12ab" in body
        assert WHEN in body
        assert "Dr. Ada Lovelace" in body
        assert "Northside Clinic" in body
    assert f'href="{JOIN}"' in html
    assert_no_host_link(message)


@pytest.mark.parametrize("kind", [k for k in NoticeKind if k is not NoticeKind.CANCELLED])
def test_every_live_patient_mail_has_the_join_link_and_no_host_link(kind: NoticeKind) -> None:
    message = render_patient(patient(kind=kind), FROM)
    for body in parts(message).values():
        assert JOIN in body and WHEN in body
    assert_no_host_link(message)


def test_patient_update_subject() -> None:
    message = render_patient(patient(kind=NoticeKind.UPDATED), FROM)
    assert message["Subject"].startswith(
        "Changed: your video appointment with Dr. Ada Lovelace is now on"
    )


def test_patient_without_clinic_or_passcode() -> None:
    message = render_patient(patient(clinic_name=None, passcode=None), FROM)
    text = parts(message)["text/plain"]
    assert "passcode" not in text.lower()
    assert "Northside" not in text


@pytest.mark.parametrize("time", [TIME, None])
def test_cancelled_patient_mail_has_no_links(time: MeetingTime | None) -> None:
    message = render_patient(
        patient(kind=NoticeKind.CANCELLED, join_url=None, passcode=None, time=time), FROM
    )
    assert message["Subject"].startswith("Cancelled: your video appointment with Dr. Ada Lovelace")
    for body in parts(message).values():
        assert "http" not in body and "href" not in body
        assert "cancelled" in body
    if time is not None:
        assert WHEN in parts(message)["text/plain"]


def test_patient_name_is_escaped_in_html() -> None:
    hostile = patient(
        patient_name='<script>alert("x")</script>', doctor_name="Dr. <b>Bold</b> & Co"
    )
    html = parts(render_patient(hostile, FROM))["text/html"]
    assert "<script>" not in html and "<b>Bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "Dr. &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in html
    # The plain-text part is not HTML: it shows the name as written.
    assert '<script>alert("x")</script>' in parts(render_patient(hostile, FROM))["text/plain"]


def test_rendered_patient_output_is_checked_for_host_links_too() -> None:
    # Simulate a template bug that prints a host link from somewhere outside the notice.
    renderer = MailRenderer()
    loader = renderer.env.loader
    assert loader is not None
    source = loader.get_source(renderer.env, "patient/invite.txt.j2")[0]
    renderer.env.loader = ChoiceLoader(
        [DictLoader({"patient/invite.txt.j2": source + "{{ leak }}"}), loader]
    )
    renderer.env.globals["leak"] = START
    with pytest.raises(RenderError, match="host link"):
        renderer.patient(patient(), FROM)


_name = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: s.strip() and "://" not in s)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(patient_name=_name, doctor_name=_name, kind=st.sampled_from(list(NoticeKind)))
def test_any_valid_patient_notice_renders_without_host_links(
    patient_name: str, doctor_name: str, kind: NoticeKind
) -> None:
    try:
        values: dict[str, Any] = {"patient_name": patient_name, "doctor_name": doctor_name, "kind": kind}
        if kind is NoticeKind.CANCELLED:
            values.update(join_url=None, passcode=None)
        notice = patient(**values)
    except ValueError:
        return  # refused at the edge (e.g. contains "/s/"): nothing to render
    message = render_patient(notice, FROM)
    assert_no_host_link(message)
    assert patient_name in parts(message)["text/plain"]


# --- doctor -------------------------------------------------------------------------------


def test_doctor_invite_has_the_start_link() -> None:
    message = render_doctor(doctor(), FROM)
    assert message["To"] == '"Dr. Ada Lovelace" <ada@clinic.example>'
    assert message["Subject"] == (
        "Start your video appointment with Grace Hopper on "
        "Thursday, 3 December 2026, 09:30 (Europe/Berlin)"
    )
    text, html = parts(message)["text/plain"], parts(message)["text/html"]
    for body in (text, html):
        assert START.replace("&", "&amp;") in body or START in body
        assert WHEN in body
        assert "Do not forward it" in body
    assert "zak=" not in message["Subject"]


@pytest.mark.parametrize("kind", [NoticeKind.UPDATED, NoticeKind.REMINDER])
def test_doctor_updates_and_reminders_carry_the_start_link(kind: NoticeKind) -> None:
    message = render_doctor(doctor(kind=kind), FROM)
    assert all(START in body for body in parts(message).values())


def test_doctor_without_start_link_gets_join_link_fallback() -> None:
    body = parts(render_doctor(doctor(start_url=None), FROM))["text/plain"]
    assert JOIN in body and "Sign in to Zoom" in body and "/s/" not in body


def test_cancelled_doctor_mail_has_no_links() -> None:
    message = render_doctor(doctor(kind=NoticeKind.CANCELLED, start_url=None, join_url=None), FROM)
    assert message["Subject"].startswith("Cancelled: video appointment with Grace Hopper on")
    for body in parts(message).values():
        assert "http" not in body and "href" not in body


# --- time zones -------------------------------------------------------------------------


def when_of(start_utc: datetime, minutes: int, zone: str) -> str:
    notice = patient(time=MeetingTime(start_utc, minutes, zone))
    return parts(render_patient(notice, FROM))["text/plain"]


def test_dst_spring_forward_shows_both_offsets() -> None:
    # Berlin jumps 02:00 -> 03:00 at 01:00 UTC on 29 March 2026: 60 minutes end at 03:30.
    text = when_of(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 60, "Europe/Berlin")
    assert "Sunday, 29 March 2026, 01:30 CET–03:30 CEST (Europe/Berlin)" in text


def test_dst_fall_back_shows_both_offsets() -> None:
    # Berlin falls back 03:00 -> 02:00 at 01:00 UTC on 25 October 2026: 02:30 twice.
    text = when_of(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 60, "Europe/Berlin")
    assert "Sunday, 25 October 2026, 02:30 CEST–02:30 CET (Europe/Berlin)" in text


def test_dst_in_new_york_and_a_half_hour_zone() -> None:
    text = when_of(datetime(2026, 3, 8, 6, 45, tzinfo=UTC), 30, "America/New_York")
    assert "Sunday, 8 March 2026, 01:45 EST–03:15 EDT (America/New_York)" in text
    text = when_of(datetime(2026, 12, 3, 4, 0, tzinfo=UTC), 45, "Asia/Kolkata")
    assert "Thursday, 3 December 2026, 09:30–10:15 (Asia/Kolkata)" in text


def test_meeting_across_midnight_names_both_days() -> None:
    text = when_of(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), 60, "Europe/Berlin")
    assert "Thursday, 31 December 2026, 23:30–Friday, 1 January 2027, 00:30 (Europe/Berlin)" in text


def test_same_instant_reads_differently_per_zone() -> None:
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    assert "03:30–04:00 (America/New_York)" in when_of(start, 30, "America/New_York")
    assert "21:30–22:00 (Pacific/Auckland)" in when_of(start, 30, "Pacific/Auckland")


# --- i18n -------------------------------------------------------------------------------


class German(gettext.NullTranslations):
    CATALOG: ClassVar[dict[str, str]] = {
        "Thursday": "Donnerstag",
        "December": "Dezember",
        "Hello %(name)s,": "Hallo %(name)s,",
        "Join the video call": "Zum Videotermin",
        "Your video appointment with %(doctor)s on %(when)s": (
            "Ihr Videotermin bei %(doctor)s am %(when)s"
        ),
    }

    def gettext(self, message: str) -> str:
        return self.CATALOG.get(message, message)


def test_user_facing_strings_go_through_gettext() -> None:
    message = MailRenderer(German()).patient(patient(), FROM)
    assert message["Subject"] == (
        "Ihr Videotermin bei Dr. Ada Lovelace am Donnerstag, 3 Dezember 2026, 09:30 (Europe/Berlin)"
    )
    text, html = parts(message)["text/plain"], parts(message)["text/html"]
    assert text.startswith("Hallo Grace Hopper,")
    assert "Zum Videotermin" in html
    assert "Donnerstag, 3 Dezember 2026, 09:30–10:00 (Europe/Berlin)" in text


# --- admin ------------------------------------------------------------------------------


def test_admin_alert() -> None:
    message = render_admin(
        AdminAlert(
            "Zoom quota exhausted for D-7",
            "retry after 00:00 UTC\n<b>x</b>",
            "admin@clinic.example",
        ),
        FROM,
    )
    assert message["Subject"] == "[telemed] Zoom quota exhausted for D-7"
    assert message["To"] == "admin@clinic.example"
    text, html = parts(message)["text/plain"], parts(message)["text/html"]
    assert "retry after 00:00 UTC\n<b>x</b>" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in html
