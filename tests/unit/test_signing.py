"""Both signature schemes against known vectors (computed with ``openssl dgst -sha256 -hmac``)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from telemed.events import signing
from telemed.events.signing import SignatureError
from telemed.zoom import webhooks

# printf 'v1:1700000000:{"event_id":"evt-1"}' | openssl dgst -sha256 -hmac 'telemed-test-secret'
V1_VECTOR = ("telemed-test-secret", "1700000000", b'{"event_id":"evt-1"}',
             "f9222f0e1467f642b524ccd2451ea0be25a9888406d010f6e4c7f18957585f9b")
# printf 'v0:1700000000:{"event":"meeting.started"}' | openssl dgst -sha256 -hmac 'zoom-secret-token'
V0_VECTOR = ("zoom-secret-token", "1700000000", b'{"event":"meeting.started"}',
             "786c4446a640d95353b44534c52c31a8be0a5eadf45b4a1715cb39d62fa6acd1")
# printf 'qgg8vlvZRS6UYooatFL8Aw' | openssl dgst -sha256 -hmac 'zoom-secret-token'
CHALLENGE = ("zoom-secret-token", "qgg8vlvZRS6UYooatFL8Aw",
             "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3")


def test_v1_known_vector() -> None:
    secret, ts, body, expected = V1_VECTOR
    assert signing.compute(secret, ts, body) == expected
    assert signing.signature_header(secret, ts, body) == "v1=" + expected
    signing.verify(secret, ts, "v1=" + expected, body, now=int(ts) + 299)


def test_v1_sign_matches_an_independent_hmac() -> None:
    signed = signing.sign("s3cret", b'{"a":1}', now=1_800_000_000)
    expected = hmac.new(b"s3cret", b'v1:1800000000:{"a":1}', hashlib.sha256).hexdigest()
    assert signed.headers["X-Telemed-Timestamp"] == "1800000000"
    assert signed.headers["X-Telemed-Signature"] == f"v1={expected}"


@pytest.mark.parametrize(
    ("timestamp", "signature", "now_offset", "reason"),
    [
        (None, "v1=" + "0" * 64, 0, "missing"),
        ("1700000000", None, 0, "missing"),
        ("yesterday", "v1=" + V1_VECTOR[3], 0, "malformed"),
        ("1700000000", "sha256=" + V1_VECTOR[3], 0, "malformed"),
        ("1700000000", "v1=" + V1_VECTOR[3].upper(), 0, "malformed"),
        ("1700000000", "v1=" + V1_VECTOR[3], 301, "expired"),
        ("1700000000", "v1=" + V1_VECTOR[3], -301, "expired"),
        ("1700000000", "v1=" + "0" * 64, 0, "mismatch"),
    ],
)
def test_v1_rejections(timestamp: str | None, signature: str | None, now_offset: int, reason: str) -> None:
    secret, ts, body, _ = V1_VECTOR
    with pytest.raises(SignatureError) as caught:
        signing.verify(secret, timestamp, signature, body, now=int(ts) + now_offset)
    assert caught.value.reason == reason


def test_v1_covers_the_timestamp_and_every_byte() -> None:
    secret, ts, body, expected = V1_VECTOR
    with pytest.raises(SignatureError):
        signing.verify(secret, str(int(ts) + 1), "v1=" + expected, body, now=int(ts))
    with pytest.raises(SignatureError):
        signing.verify(secret, ts, "v1=" + expected, body + b" ", now=int(ts))


def test_zoom_v0_known_vector_and_challenge() -> None:
    secret, ts, body, expected = V0_VECTOR
    assert webhooks.zoom_signature(secret, ts, body) == "v0=" + expected
    webhooks.verify_zoom(secret, ts, "v0=" + expected, body, tolerance_seconds=300, now=int(ts) + 10)
    # Milliseconds are read as such (the MAC still covers the header exactly as sent).
    ms = ts + "123"
    webhooks.verify_zoom(secret, ms, webhooks.zoom_signature(secret, ms, body), body,
                         tolerance_seconds=300, now=int(ts))
    secret, plain, encrypted = CHALLENGE
    assert webhooks.encrypted_token(secret, plain) == encrypted


@pytest.mark.parametrize(
    ("timestamp", "signature", "now_offset", "reason"),
    [
        (None, "v0=" + V0_VECTOR[3], 0, "missing"),
        ("1700000000", "v1=" + V0_VECTOR[3], 0, "malformed"),
        ("1700000000", "v0=" + V0_VECTOR[3], 400, "expired"),
        ("1700000000", "v0=" + "a" * 64, 0, "mismatch"),
    ],
)
def test_zoom_v0_rejections(timestamp: str | None, signature: str, now_offset: int, reason: str) -> None:
    secret, ts, body, _ = V0_VECTOR
    with pytest.raises(SignatureError) as caught:
        webhooks.verify_zoom(secret, timestamp, signature, body, tolerance_seconds=300, now=int(ts) + now_offset)
    assert caught.value.reason == reason


def test_reading_notifications() -> None:
    started = webhooks.read_notification(
        {"event": "meeting.started", "payload": {"object": {"id": "85318239203", "host_id": "h1"}}})
    assert (started.zoom_meeting_id, started.zoom_user_id) == (85318239203, "h1")
    assert webhooks.read_notification({"event": "meeting.ended", "payload": {"object": {"id": 7}}}).zoom_meeting_id == 7
    assert webhooks.read_notification({"event": "app_deauthorized", "payload": {"user_id": "u-1"}}).zoom_user_id == "u-1"
    assert webhooks.read_notification({"event": "recording.completed"}).event == "recording.completed"
    for bad, field in [([], "object"), ({}, "event"), ({"event": "meeting.deleted", "payload": {"object": {}}},
                                                       "payload.object.id"),
                       ({"event": "app_deauthorized", "payload": {}}, "payload.user_id")]:
        with pytest.raises(webhooks.BadNotification, match=field):
            webhooks.read_notification(bad)
