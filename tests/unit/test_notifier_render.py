"""Rendering notices into mail: content, links per role, local times, escaping, i18n."""

from __future__ import annotations

import gettext
from datetime import UTC, datetime
from email.message import Message
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader

from telemed.workers.notifier.messages import AdminAlert, MeetingTime, NoticeKind
from telemed.workers.notifier.render import (
    MailRenderer,
    RenderError,
    render_admin,
    render_doctor,
    render_patient,
)
from tests.support.mail_scan import parsed
from tests.support.notices import JOIN, START, TIME, doctor, patient

FROM = "telemed <no-reply@telemed.example>"
WHEN = "Thursday, 3 December 2026, 09:30–10:00 (Europe/Berlin)"


def parts(message: Message) -> dict[str, str]:
    """Decoded text of each leaf part by content type (transfer encoding undone)."""
    return {
        part.get_content_type(): part.get_content()
        for part in parsed(message).walk()
        if not part.is_multipart()
    }


def everything(message: Message) -> str:
    """Headers (as written and decoded), raw bytes and decoded parts: wherever a link
    could hide."""
    headers = "\n".join(f"{k}: {v}" for m in (message, parsed(message)) for k, v in m.items())
    return "\n".join([headers, message.as_string(), *parts(message).values()])


def assert_no_host_link(message: Message) -> None:
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
        assert message["MIME-Version"] == "1.0"
        for name, value in [*message.items(), *parsed(message).items()]:
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


@pytest.mark.parametrize("name", ["Dr. https://evil.example", "Dr. Müller https://evil.example"])
def test_a_link_in_a_name_never_reaches_a_header(name: str) -> None:
    # The second one is RFC 2047-encoded in the header: the check reads it decoded.
    with pytest.raises(RenderError, match="Subject"):
        render_patient(patient(doctor_name=name), FROM)


def test_non_ascii_names_and_subjects_are_rfc2047_encoded() -> None:
    notice = patient(patient_name="Zoë Ærø-Łukasz 田中", doctor_name="Dr. Müller-Świętosław")
    message = render_patient(notice, "Télémed Süd <no-reply@telemed.example>")
    raw = message.as_bytes()
    head = raw[: raw.index(b"\n\n")]
    assert head.isascii() and b"=?utf-8?" in head
    received = parsed(message)
    assert not received.defects
    assert received["To"].addresses[0].display_name == "Zoë Ærø-Łukasz 田中"
    assert received["To"].addresses[0].addr_spec == "grace@example.org"
    assert received["From"].addresses[0].display_name == "Télémed Süd"
    assert received["From"].addresses[0].addr_spec == "no-reply@telemed.example"
    assert received["Subject"] == (
        "Your video appointment with Dr. Müller-Świętosław on "
        "Thursday, 3 December 2026, 09:30 (Europe/Berlin)"
    )
    assert "Zoë Ærø-Łukasz 田中" in parts(message)["text/plain"]


def test_text_that_looks_like_an_encoded_word_stays_text() -> None:
    name = "=?utf-8?q?Admin?="
    received = parsed(render_patient(patient(patient_name=name, doctor_name=f"Dr. {name}"), FROM))
    assert received["To"].addresses[0].display_name == name
    assert f"Dr. {name} on" in received["Subject"]


def test_quoted_display_names() -> None:
    received = parsed(render_patient(patient(patient_name='Hopper, Grace "Amazing"'), FROM))
    assert received["To"].addresses[0].display_name == 'Hopper, Grace "Amazing"'
    assert received["To"].addresses[0].addr_spec == "grace@example.org"


@pytest.mark.parametrize(
    "bad", ["Grace\r\nBcc: evil@example.com", "Grace\nHopper", "Grace\rHopper", "Grace\u2028Hopper",
            "Grace\x1cHopper", "Grace\x85Hopper"]
)
def test_line_breaks_never_reach_a_header_even_past_the_notice_checks(bad: str) -> None:
    # PatientNotice refuses these already; the renderer does not rely on that.
    notice = patient()
    object.__setattr__(notice, "patient_name", bad)  # a name goes into To
    with pytest.raises(RenderError, match="To"):
        render_patient(notice, FROM)
    notice = patient()
    object.__setattr__(notice, "doctor_name", bad)  # a name goes into the Subject
    message = render_patient(notice, FROM)
    received = parsed(message)
    assert "Bcc" not in received and not received.defects
    assert received["Subject"].startswith("Your video appointment with Grace")
    assert all(ch not in received["Subject"] for ch in "\r\n\u2028\x1c\x85")
    notice = patient()
    object.__setattr__(notice, "patient_email", "grace@example.org\r\nBcc: evil@example.com")
    with pytest.raises(RenderError, match="To"):
        render_patient(notice, FROM)
    with pytest.raises(RenderError, match="mail_from"):
        render_patient(patient(), f"telemed{bad[5:]} <no-reply@telemed.example>")


def test_a_non_ascii_address_is_refused() -> None:
    # The notice refuses it first (events.rules); the renderer still defends itself.
    with pytest.raises(ValueError, match="patient_email"):
        patient(patient_email="grace@exämple.org")
    notice = patient()
    object.__setattr__(notice, "patient_email", "grace@exämple.org")
    with pytest.raises(RenderError, match="To"):
        render_patient(notice, FROM)


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


@pytest.mark.parametrize("template", ["patient/invite.txt.j2", "patient/invite.html.j2"])
@pytest.mark.parametrize(
    # The second one is a line whose "zak=" quoted-printable splits over a soft line break
    # ("za=" / "k=3D..."): only a check of the decoded part sees it.
    "leak", [START, "\n" + "x" * 37 + START.replace("/s/", "/j/") + "\n"], ids=["start-link", "split-by-qp"]
)
def test_rendered_patient_output_is_checked_for_host_links_too(template: str, leak: str) -> None:
    # Simulate a template bug that prints a host link from somewhere outside the notice.
    renderer = MailRenderer()
    loader = renderer.env.loader
    assert loader is not None
    source = loader.get_source(renderer.env, template)[0]
    if "{% block content %}" in source:  # HTML: only what is inside a block is rendered
        source = source.replace("{% block content %}", "{% block content %}{{ leak }}")
    else:
        source += "{{ leak }}"
    renderer.env.loader = ChoiceLoader([DictLoader({template: source}), loader])
    renderer.env.globals["leak"] = leak
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
