"""The compat32 part builders write what ``EmailMessage`` (``email.policy.default``) wrote:
same body encodings, same header lines, just without the header registry's cost."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.policy import compat32

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemed.workers.notifier import mime
from telemed.workers.notifier.render import render_patient
from tests.support.mail_scan import parsed
from tests.support.notices import patient

FROM = "telemed <no-reply@telemed.example>"
_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


@settings(max_examples=200, deadline=None)
@given(text=_text)
def test_quoted_printable_is_what_set_content_wrote(text: str) -> None:
    reference = EmailMessage()
    reference.set_content(text, subtype="html", cte="quoted-printable")
    assert mime.quoted_printable(text) == reference.get_payload()


@settings(max_examples=200, deadline=None)
@given(text=_text)
def test_base64_text_is_what_set_content_wrote(text: str) -> None:
    reference = EmailMessage()
    reference.set_content(text, subtype="calendar", cte="base64")
    assert mime.base64_body(mime.text_lines(text)) == reference.get_payload()


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=600))
def test_base64_bytes_are_what_set_content_wrote(data: bytes) -> None:
    reference = EmailMessage()
    reference.set_content(data, maintype="application", subtype="ics", filename="invite.ics")
    assert mime.base64_body(data) == reference.get_payload()


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["Subject", "To", "Content-Type", "X"]),
    value=st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
    | st.text(alphabet=st.characters(max_codepoint=127), max_size=120),
    linesep=st.sampled_from(["\n", "\r\n"]),
)
def test_header_lines_are_what_compat32_writes(name: str, value: str, linesep: str) -> None:
    fast, reference = mime.POLICY.clone(linesep=linesep), compat32.clone(linesep=linesep)
    try:
        expected = reference.fold(name, value)
    except Exception as exc:  # e.g. "\nBcc:" in a value: must fail the same way
        with pytest.raises(type(exc)):
            fast.fold(name, value)
    else:
        assert fast.fold(name, value) == expected
    try:
        expected_bytes = reference.fold_binary(name, value)
    except Exception as exc:
        with pytest.raises(type(exc)):
            fast.fold_binary(name, value)
    else:
        assert fast.fold_binary(name, value) == expected_bytes


def test_boundaries_are_chosen_when_built_and_writing_changes_nothing() -> None:
    message = render_patient(patient(), FROM)
    boundary = message.get_boundary()
    assert boundary and re.fullmatch(r"={15}\d{19}==", boundary)
    first = message.as_bytes()
    assert message.as_bytes() == first and message.get_boundary() == boundary
    assert mime.boundary() != mime.boundary()
    assert not parsed(message).defects


@pytest.mark.parametrize("value", ["a\nb", "a\r\nBcc: x@y.example", "a\u2028b", "a\x0bb", "a\x1cb", "a\x85b"])
def test_line_breaks_are_refused(value: str) -> None:
    with pytest.raises(mime.HeaderValueError, match="Subject"):
        mime.unstructured("Subject", value)
    with pytest.raises(mime.HeaderValueError, match="To"):
        mime.address("To", value, "grace@example.org")


def test_addresses() -> None:
    assert mime.address("To", "", "grace@example.org") == "grace@example.org"
    assert mime.address("To", "Grace Hopper", "grace@example.org") == "Grace Hopper <grace@example.org>"
    assert mime.address("To", "Dr. Ada", "ada@example.org") == '"Dr. Ada" <ada@example.org>'
    assert mime.address("To", "Zoë", "zoe@example.org") == "=?utf-8?q?Zo=C3=AB?= <zoe@example.org>"
    assert mime.decoded("=?utf-8?q?Zo=C3=AB?= <zoe@example.org>") == "Zoë <zoe@example.org>"
    with pytest.raises(mime.HeaderValueError):
        mime.address("To", "Zoë", "zoë@example.org")


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?Zo=C3=AB?= <zoe@example.org>", "Zoë <zoe@example.org>"),
        ("Your =?utf-8?b?TcO8bGxlcg==?=\n =?utf-8?q?_https=3A//x?= on", "Your Müller https://x on"),
        ("=?bogus?q?https=3A//x?=", "https://x"),  # unknown charset: still read
        ("x =?utf-8?q?=C3=28?= y", "x \ufffd( y"),  # bad bytes: replaced, never an error
    ],
)
def test_decoded_is_lenient(raw: str, shown: str) -> None:
    assert mime.decoded(raw) == shown
