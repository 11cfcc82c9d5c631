"""Pure pieces of the operations part: admin sessions and CSRF, dead-letter reasons, gauges."""

from __future__ import annotations

import hashlib
import time

import pytest
from cryptography.fernet import Fernet
from itsdangerous import URLSafeTimedSerializer

from telemed.foundation import dead_letters
from telemed.foundation import queue_gauges as gauges
from telemed.foundation import queue_gauges as metrics
from telemed.web.admin import session as auth

KEYS = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]


def test_session_round_trip_and_rotation() -> None:
    cookie, made = auth.make_session(KEYS, "abc123", "clinic-a")
    assert auth.read_session(KEYS, cookie) == made and made.clinic_id == "clinic-a"
    assert auth.read_session(KEYS[1:], cookie) is None  # signed with the newest key only
    assert auth.read_session([Fernet.generate_key().decode(), *KEYS], cookie) == made  # still verifies
    for bad in (None, "", cookie + "x", "a" * 600):
        assert auth.read_session(KEYS, bad) is None


def test_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    old = URLSafeTimedSerializer(list(reversed(KEYS)), salt=auth.SALT,
                                 signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"})
    cookie = old.dumps({"p": "abc", "n": "n", "c": "default"})
    assert auth.read_session(KEYS, cookie) is not None
    assert auth.read_session(KEYS, old.dumps({"p": "abc", "n": "n"})) is None  # from before clinics: sign in again
    later = time.time() + auth.SESSION_MAX_AGE + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert auth.read_session(KEYS, cookie) is None


def test_csrf_is_bound_to_purpose_and_nonce() -> None:
    token = auth.csrf_token(KEYS, "session", "nonce-1")
    assert auth.csrf_ok(KEYS, "session", "nonce-1", token)
    assert not auth.csrf_ok(KEYS, "login", "nonce-1", token)
    assert not auth.csrf_ok(KEYS, "session", "nonce-2", token)
    assert not auth.csrf_ok(KEYS, "session", None, token)
    assert not auth.csrf_ok(KEYS, "session", "nonce-1", None)


def test_dead_letter_reason_prefers_the_final_failure_and_scrubs_secrets() -> None:
    reason, _ = dead_letters._reason({"failure": "ZoomAuthError: bad token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                                      "traceback": "Traceback ...\nValueError: old"})
    assert reason.startswith("ZoomAuthError") and "eyJhbGci" not in reason
    reason, trace = dead_letters._reason({"traceback": "Traceback (most recent call last):\n  x\nKeyError: 'k'\n"})
    assert reason == "KeyError: 'k'" and trace.startswith("Traceback")
    assert dead_letters._reason({})[0] == "no reason recorded"


def test_gauge_snapshot_applies_to_the_gauges() -> None:
    gauges.apply({"queue_depth|events": 3.0, "dead_letters|meetings": 2.0, "outbox_pending": 5.0,
                  "updated_at": 1234.0})
    assert metrics.QUEUE_DEPTH.labels(queue="events")._value.get() == 3.0
    assert metrics.DEAD_LETTERS.labels(queue="meetings")._value.get() == 2.0
    assert metrics.OUTBOX_PENDING._value.get() == 5.0
    assert metrics.GAUGES_UPDATED._value.get() == 1234.0
