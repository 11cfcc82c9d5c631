"""The redaction chain's content scanner and key rules, tested with canary values.

Each canary is a made-up secret with a distinctive core ("CANARY...", "Cn4ryPass1"): a
test fails if any core survives, wherever the canary was put. The canaries live in
tests/support/redaction_canaries.py; test_logging.py drives them through both renderers.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from telemed.foundation.redaction import (
    ALLOWED_KEYS,
    REDACTED,
    is_sensitive_key,
    mask_request_target,
    redact_event_dict,
    redact_value,
    scrub_text,
)
from tests.support.encodings import encoded, fully_decoded
from tests.support.redaction_canaries import (
    ACCESS_TOKEN,
    BASIC_CRED,
    BEARER_TOKEN,
    CLIENT_SECRET,
    FERNET_TOKEN,
    JOIN_URL,
    OAUTH_CODE,
    PASSCODE,
    PATIENT_EMAIL,
    PATIENT_NAME,
    PHONE,
    REFRESH_TOKEN,
    SECRET_FRAGMENTS,
    SMTP_URL,
    START_URL,
    ZAK,
    assert_no_canary,
)

# A canary in a context that identifies it: each must be masked all by itself.
# (A bare passcode in prose, "see you, Cn4ryPass1", is indistinguishable from a word:
# secrets are recognised by shape or by the key they come with.)
CANARY_UNITS: dict[str, str] = {
    "jwt": ACCESS_TOKEN,
    "start_url": START_URL,
    "join_url": JOIN_URL,
    "passcode_kv": f"passcode={PASSCODE}",
    "password_json": f'"password": "{PASSCODE}"',
    "password_json_compact": f'{{"password":"{PASSCODE}"}}',
    "passcode_repr": f"{{'passcode': '{PASSCODE}'}}",
    "password_escaped_json": f'{{\\"password\\": \\"{PASSCODE}\\"}}',
    "password_colon": f"password: {PASSCODE}",
    "email": PATIENT_EMAIL,
    "email_urlencoded": "canary.patient%40example.org",
    "refresh_kv": f"refresh_token={REFRESH_TOKEN}",
    "refresh_form": f"grant_type=refresh_token&refresh_token={REFRESH_TOKEN}",
    "access_token_kv": f"access_token={ACCESS_TOKEN}",
    "fernet": FERNET_TOKEN,
    "smtp_url": SMTP_URL,
    "redis_url": "redis://:CANARYredisPw@redis.internal:6379/0",
    "bearer_header": f"Authorization: Bearer {BEARER_TOKEN}",
    "bearer": f"Bearer {BEARER_TOKEN}",
    "basic_header": f"Authorization: Basic {BASIC_CRED}",
    "basic": f"basic {BASIC_CRED}",
    "headers_repr": f"{{'Authorization': 'Bearer {BEARER_TOKEN}', 'Accept': 'application/json'}}",
    "client_secret_kv": f"client_secret={CLIENT_SECRET}",
    "client_secret_json": f'{{"client_secret": "{CLIENT_SECRET}"}}',
    "oauth_callback": f"/oauth/callback?code={OAUTH_CODE}&state=xyz",
    "oauth_callback_url": f"https://telemed.example/oauth/callback?code={OAUTH_CODE}",
    "start_path": f"/s/123456789?zak={ZAK}",
    "cookie_header": "Cookie: sessionid=CANARYsession; theme=dark",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIICANARYkey\n-----END PRIVATE KEY-----",
    "patient_repr": f"Patient(name='{PATIENT_NAME}', email='{PATIENT_EMAIL}')",
    "tk_param": "tk=CANARYbearer0123",
    "start_link_path": "/start/CANARYstartlink",
    "start_link_encoded": "/start/%65yJCANARYstartlink",
    "start_link_encoded_route": "/%73tart%2FCANARYstartlink",
    "connect_link_query": "/oauth/zoom/connect?token=CANARYconnect",
    "connect_link_encoded_key": "/oauth/zoom/connect?%74oken=CANARYconnect",
    "connect_link_encoded_equals": "/oauth/zoom/connect?token%3DCANARYconnect",
}


# --- scrub_text ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CANARY_UNITS))
def test_each_canary_is_masked_on_its_own(name: str) -> None:
    out = scrub_text(CANARY_UNITS[name])
    assert_no_canary(out)
    assert REDACTED in out


@pytest.mark.parametrize("name", sorted(CANARY_UNITS))
def test_each_canary_is_masked_inside_a_sentence(name: str) -> None:
    text = f"Zoom call failed (status 401) while handling {CANARY_UNITS[name]}, giving up."
    out = scrub_text(text)
    assert_no_canary(out)
    assert out.startswith("Zoom call failed (status 401) while handling ")


def test_all_canaries_in_one_string() -> None:
    out = scrub_text("\n".join(CANARY_UNITS.values()))
    assert_no_canary(out)


def test_url_keeps_what_helps_debugging() -> None:
    assert scrub_text(START_URL) == f"https://zoom.us/s/{REDACTED}?{REDACTED}"
    assert scrub_text(JOIN_URL) == f"https://zoom.us/j/987654321?{REDACTED}"
    assert scrub_text(SMTP_URL) == f"smtps://{REDACTED}@smtp.example.org:465"
    # Harmless query parameters stay; a sensitive one takes the whole query with it.
    listing = "https://api.zoom.us/v2/users/me/meetings?page_size=30&type=scheduled"
    assert scrub_text(listing) == listing
    assert scrub_text("see https://x.example/a?b=c&pwd=Z).") == f"see https://x.example/a?{REDACTED})."


def test_json_ish_pairs_keep_their_quotes() -> None:
    assert scrub_text(f'{{"password": "{PASSCODE}", "topic": "Consult"}}') == (
        f'{{"password": "{REDACTED}", "topic": "Consult"}}'
    )
    assert scrub_text(f"{{'passcode': '{PASSCODE}', 'id': 'A-1001'}}") == (
        f"{{'passcode': '{REDACTED}', 'id': 'A-1001'}}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "appointment synced",
        "2026-12-01T08:00:00.123456Z",
        "event_id=evt-7f3c appointment_id=A-1001 meeting_id=81234567890 status=created",
        "Failed to process message sync_meeting('A-1001') with unhandled exception.",
        "Failed to refresh token: invalid_grant",  # prose, not a key: value pair
        "Basic authentication is not configured",
        "Retrying message 'abc' in 15000 milliseconds.",
        "GET /v2/meetings/81234567890?occurrence_id=1700000000000",
        "zoom_code=124 http_status=401 outcome=token_rejected",
        'File "/srv/telemed/workers/meetings/sync.py", line 42, in sync_meeting',
        "ValueError: start_time must be in the future",
        "token_expires_at=2026-12-01T09:00:00Z token_type=bearer",
    ],
)
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert scrub_text(text) == text


# Fragments of the scanner's own syntax, so prefixes and suffixes collide with it.
_WHOLE_WORD_KEY_UNITS = {"tk_param"}

_NOISE = st.lists(
    st.sampled_from(
        [*"aZ09 =:&?@./\\\"'-_%#{}[]()\n\t",
         "Bearer ", "Basic ", "://", "gAAAAA", "eyJ", "password", "=", "/s/12345", "%40"]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(CANARY_UNITS)),
    prefix=st.one_of(st.text(max_size=30), _NOISE),
    suffix=st.one_of(st.text(max_size=30), _NOISE),
)
@example(name="jwt", prefix="gAAAAAxxxxxxxxxxxxxxxx", suffix="")
@example(name="passcode_kv", prefix="Basic ", suffix="")
@example(name="jwt", prefix="Basic ", suffix="")
@example(name="smtp_url", prefix="x" * 40, suffix="")
@example(name="jwt", prefix="a@b.org", suffix="9")
def test_scrub_never_returns_an_embedded_canary(name: str, prefix: str, suffix: str) -> None:
    if name in _WHOLE_WORD_KEY_UNITS and re.search(r"[A-Za-z0-9_.\-]$", prefix):
        # "xtk=..." is a different key from "tk=...": two-letter keys are only
        # recognised as whole words (long ones like "password" also when glued).
        prefix += " "
    out = scrub_text(prefix + CANARY_UNITS[name] + suffix)
    leaked = [f for f in SECRET_FRAGMENTS if f in out and f not in prefix + suffix]
    assert not leaked, f"{leaked} leaked from {prefix!r} + {name} + {suffix!r}: {out!r}"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_scrub_is_idempotent_and_total(text: str) -> None:
    once = scrub_text(text)
    assert isinstance(once, str)
    assert scrub_text(once) == once




START_TOKEN = "eyJhIjoiQ0FOQVJZIn0.CANARYstartlinkSig"  # shaped like ours, or not (below)


@pytest.mark.parametrize(
    "path",
    [
        f"/start/{START_TOKEN}",
        f"/start/{encoded(START_TOKEN)}",  # "%65%79%4A..."
        f"/start/%65{START_TOKEN[1:]}",  # only the "e" of "eyJ" encoded
        f"/start/{encoded(START_TOKEN, 2)}",  # encoded twice
        f"/start/{encoded(START_TOKEN, 3)}",
        f"/start%2F{START_TOKEN}",
        f"/start%2f{START_TOKEN}",
        f"/start%252F{START_TOKEN}",
        f"{encoded('/start/')}{START_TOKEN}",
        f"/{encoded('start', 2)}/{START_TOKEN}",
        f"/StArT/{START_TOKEN}",
        f"/%53tArT%2f{encoded(START_TOKEN)}",
        "/start/CANARYstartlinkPlainWord",  # no token shape at all
        f"/telemed/start/{START_TOKEN}",  # behind a path prefix
        f"//start//{START_TOKEN}",
        f"/start/{START_TOKEN}/more?x=1",
    ],
)
def test_the_start_link_segment_is_masked_in_any_encoding(path: str) -> None:
    """By structure, for the access log's raw request target (any encoding at all)."""
    out = mask_request_target(path)
    assert "CANARY" not in fully_decoded(out).upper(), out
    assert out.startswith("/") and "start/" + REDACTED in out


@pytest.mark.parametrize(
    "path",
    [
        f"/start/{START_TOKEN}",
        f"/start/{encoded(START_TOKEN)}",
        f"/start/%65{START_TOKEN[1:]}",
        f"/start/%2565{START_TOKEN[1:]}",
        f"/start%2F{START_TOKEN}",
        f"/START%2f{START_TOKEN}",
        f"{encoded('/start/')}{START_TOKEN}",
        f"/%2573tart%252F{START_TOKEN}",
        "/start/CANARYstartlinkPlainWord",
        f"/telemed/start/{START_TOKEN}",
    ],
)
def test_the_start_link_segment_is_masked_in_any_text(path: str) -> None:
    """By the scanner, wherever such a path turns up (the common encodings: each character
    literal or %XX, the percent itself re-encoded any number of times)."""
    for line in (path, f'127.0.0.1:5555 - "GET {path} HTTP/1.1" 404', f"https://telemed.example{path}"):
        out = scrub_text(line)
        assert "CANARY" not in fully_decoded(out).upper(), (line, out)
        assert "/start/" + REDACTED in out


@pytest.mark.parametrize(
    "target",
    [
        "/oauth/zoom/connect?token=CANARYconnect",
        "/oauth/zoom/connect?%74oken=CANARYconnect",
        "/oauth/zoom/connect?%2574oken=CANARYconnect",
        "/oauth/zoom/connect?token%3DCANARYconnect",
        "/oauth/zoom/connect?token%253dCANARYconnect",
        f"/oauth/zoom/connect?token={encoded('CANARYconnect')}",
        "/oauth/zoom/connect?page=1&token=CANARYconnect",
        "/oauth/zoom/callback?code=CANARYconnect&state=CANARYconnect",
    ],
)
def test_secret_queries_are_masked_in_any_encoding(target: str) -> None:
    for out in (scrub_text(f'"GET {target} HTTP/1.1" 200'), mask_request_target(target)):
        assert "CANARY" not in fully_decoded(out).upper(), out


@pytest.mark.parametrize("target", ["/healthz", "/v1/appointments/A-1/meeting", "/admin?page=2",
                                    "/v2/meetings/81234567890?occurrence_id=1700000000000", "/start/"])
def test_harmless_targets_are_kept(target: str) -> None:
    assert mask_request_target(target) == target


@pytest.mark.parametrize("text", ["we start at 9", "/restart/now", "/v1/startle", "100% done", "/start/"])
def test_start_elsewhere_is_left_alone(text: str) -> None:
    assert scrub_text(text) == text


HOSTILE = {  # built to any length n, so one shape can be scrubbed at two sizes
    "colons": lambda n: "a:" * (n // 2),
    "equals": lambda n: "a=" * (n // 2),
    "one long word, then =": lambda n: "x" * n + "=",
    "open quoted passwords": lambda n: "'password': '" * (n // 13),
    "at signs": lambda n: "a@" * (n // 2),
    "query starts": lambda n: "?a=" * (n // 3),
    "schemes": lambda n: "https://" * (n // 8),
    "JWT starts": lambda n: "eyJ" * (n // 3),
    "an unterminated PEM block": lambda n: "-----BEGIN RSA PRIVATE KEY-----" + "A" * n,
    "percent runs": lambda n: "%" + "25" * (n // 2),
    "many percents": lambda n: "%25%2" * (n // 5),
    "encoded start paths": lambda n: "/%73tart%2F " * (n // 12),
    "query with encoded equals": lambda n: "?a%25%25" * (n // 8),
}


def _best_of_three(text: str) -> float:
    """CPU seconds of this thread, not wall time: other processes taking the CPU (the
    suite runs in three) must not count as the scrubber's."""
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        scrub_text(text)
        best = min(best, time.thread_time() - started)
    return best


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_scrub_is_linear_on_hostile_input(shape: str) -> None:
    """A pathological string must not stall a worker thread inside a log call: scrubbing
    grows linearly with the input (4 x longer: about 4 x the time; a backtracking pattern
    would take 16 x). A ratio measured within the test, so it holds on a slow or busy
    machine; the 2 ms floor keeps timer noise on trivially fast inputs out of it."""
    build = HOSTILE[shape]
    quarter, whole = _best_of_three(build(25_000)), _best_of_three(build(100_000))
    assert whole < 10 * max(quarter, 0.002), (shape, quarter, whole)


# --- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password", "smtp_password", "passcode", "token", "access_token", "refreshToken",
        "client_secret", "secret_keys", "authorization", "Authorization", "X-Api-Key",
        "api_key", "start_url", "startUrl", "join_url", "zak", "tk", "email",
        "patient_email", "patient_name", "name", "first_name", "phone", "cookie",
        "set-cookie", "credentials", "auth", "signature", "address",
    ],
)
def test_sensitive_key_names(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "logger_name", "actor_name", "queue_name", "hostname", "filename", "meeting_id",
        "zoom_meeting_id", "appointment_id", "doctor_id", "status", "smtp_url", "client_id",
        "token_expires_at", "token_type", "passcode_length", "topic", "duration_minutes",
    ],
)
def test_harmless_key_names(key: str) -> None:
    assert not is_sensitive_key(key)


def test_allow_list_covers_the_correlation_ids() -> None:
    assert {"event_id", "appointment_id", "message_id", "meeting_id", "actor", "queue"} <= ALLOWED_KEYS


# --- event dicts --------------------------------------------------------------------------


def _event(**extra: object) -> dict[str, object]:
    return {
        "event": "meeting created",
        "level": "info",
        "timestamp": "2026-12-01T08:00:00.123456Z",
        "logger": "telemed.workers.meetings.sync",
        "event_id": "evt-7f3c",
        "appointment_id": "A-1001",
        "message_id": "5f0c2a8e-1b2c-4d5e-8f90-123456789abc",
        "meeting_id": 81234567890,
        "attempt": 2,
        "duration_ms": 12.5,
        **extra,
    }


def test_allow_listed_ids_survive_unchanged() -> None:
    original = _event()
    assert redact_event_dict(None, "info", dict(original)) == original


def test_sensitive_keys_are_redacted_whatever_the_value() -> None:
    out = redact_event_dict(
        None,
        "info",
        _event(
            passcode=PASSCODE,
            start_url=START_URL,
            join_url=JOIN_URL,
            patient_name=PATIENT_NAME,
            phone=PHONE,
            password=123456,  # numeric passcodes are still passcodes
            access_token=ACCESS_TOKEN,
            password_set=True,  # a bool cannot leak and says something useful
            refresh_token=None,
        ),
    )
    for key in ("passcode", "start_url", "join_url", "patient_name", "phone", "password",
                "access_token"):
        assert out[key] == REDACTED, key
    assert out["password_set"] is True
    assert out["refresh_token"] is None
    assert out["appointment_id"] == "A-1001"


def test_innocent_keys_are_scanned_and_nested_values_handled() -> None:
    payload: dict[str, Any] = {
        "appointment": {
            "id": "A-1001",
            "patient": {"id": "P-3", "name": PATIENT_NAME, "email": PATIENT_EMAIL},
            "notes": [f"link {START_URL}", {"token": REFRESH_TOKEN}, (JOIN_URL, 3)],
        },
        "response_body": f'{{"access_token": "{ACCESS_TOKEN}", "expires_in": 3600}}',
    }
    out: Any = redact_event_dict(None, "info", _event(detail=payload, note=f"mail {PATIENT_EMAIL}"))
    assert_no_canary(repr(out))
    assert out["detail"]["appointment"]["id"] == "A-1001"
    assert out["detail"]["appointment"]["patient"]["id"] == "P-3"
    assert '"expires_in": 3600' in out["detail"]["response_body"]
    assert isinstance(out["detail"]["appointment"]["notes"][2], tuple)
    # The caller's objects are copied, never redacted in place.
    assert payload["appointment"]["patient"]["email"] == PATIENT_EMAIL


def test_allow_listed_strings_are_still_scanned() -> None:
    out = redact_event_dict(None, "info", {"event": f"sending {JOIN_URL}", "path": f"/s/123456789?zak={ZAK}"})
    assert_no_canary(repr(out))
    assert out["event"].startswith("sending https://zoom.us/j/987654321")


class _Leaky:
    def __str__(self) -> str:
        return f"Leaky(start_url={START_URL}, owner={PATIENT_EMAIL})"

    def __repr__(self) -> str:  # pragma: no cover - must never be used
        raise AssertionError("renderers must not repr() unredacted objects")


def test_objects_become_scrubbed_strings() -> None:
    out = redact_event_dict(
        None,
        "info",
        _event(
            obj=_Leaky(),
            error=RuntimeError(f"refresh_token={REFRESH_TOKEN}"),
            raw=f"pwd={PASSCODE}".encode(),
            when=dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC),
            uid=uuid.UUID(int=7),
            items={ACCESS_TOKEN},
        ),
    )
    assert_no_canary(repr(out))
    assert out["error"].startswith("RuntimeError: refresh_token=")
    assert out["when"] == "2026-12-01T08:00:00+00:00"
    assert out["uid"] == str(uuid.UUID(int=7))


def test_exc_info_left_in_the_dict_is_formatted_and_scrubbed() -> None:
    try:
        raise ValueError(f"bad join url {JOIN_URL}")
    except ValueError as exc:
        out = redact_event_dict(None, "error", {"event": "boom", "exc_info": exc})
    assert "exc_info" not in out
    assert "Traceback" in out["exception"]
    assert_no_canary(out["exception"])


def test_deeply_nested_and_cyclic_values_terminate() -> None:
    cyclic: list[object] = [ACCESS_TOKEN]
    cyclic.append(cyclic)
    out = redact_value({"a": cyclic})
    assert_no_canary(repr(out))
