"""Signed start-link tokens: scope, expiry, tampering and key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from telemed.foundation import start_tokens
from telemed.foundation.start_tokens import StartTokenError

KEY = Fernet.generate_key().decode()
OLD = Fernet.generate_key().decode()
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def token(keys: list[str] | None = None, **changes: object) -> str:
    values: dict[str, object] = {"appointment_id": "A-1001", "doctor_id": "D-7",
                                 "expires_at": start_tokens.expiry_for(START, 30)}
    values.update(changes)
    return start_tokens.issue(keys or [KEY], **values)  # type: ignore[arg-type]


def test_round_trip_names_doctor_appointment_and_expiry() -> None:
    claim = start_tokens.verify([KEY], token(), now=NOW)
    assert (claim.appointment_id, claim.doctor_id) == ("A-1001", "D-7")
    assert claim.expires_at == START + timedelta(minutes=30) + start_tokens.GRACE


def test_expires_after_the_appointment_ends_plus_grace() -> None:
    end = START + timedelta(minutes=30)
    start_tokens.verify([KEY], token(), now=end + start_tokens.GRACE - timedelta(seconds=1))
    with pytest.raises(StartTokenError) as caught:
        start_tokens.verify([KEY], token(), now=end + start_tokens.GRACE)
    assert caught.value.reason == "expired"


@pytest.mark.parametrize("mangle", [
    # Signature changed. Not its last character: in unpadded base64 of 32 bytes the last
    # character's low bits are padding, so A <-> B there can decode to the same bytes.
    lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
    lambda t: "x" + t,  # payload changed
    lambda t: t.split(".")[0],  # signature removed
    lambda t: "",
    lambda t: "a" * 2000,
    lambda t: "not-a-token",
])
def test_tampered_or_garbage_tokens_are_invalid(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StartTokenError) as caught:
        start_tokens.verify([KEY], mangle(token()), now=NOW)
    assert caught.value.reason == "invalid"


def test_a_token_from_another_key_is_invalid() -> None:
    with pytest.raises(StartTokenError):
        start_tokens.verify([KEY], token([Fernet.generate_key().decode()]), now=NOW)


def test_key_rotation_new_key_signs_old_tokens_still_verify() -> None:
    old_token = token([OLD])
    rotated = [KEY, OLD]  # newest first, as in TELEMED_SECRET_KEYS
    assert start_tokens.verify(rotated, old_token, now=NOW).doctor_id == "D-7"
    new_token = token(rotated)
    with pytest.raises(StartTokenError):
        start_tokens.verify([OLD], new_token, now=NOW)  # signed with the newest key
    assert start_tokens.verify([KEY], new_token, now=NOW).appointment_id == "A-1001"


def test_the_token_is_url_safe_and_holds_no_zoom_credential() -> None:
    value = token()
    assert all(c.isalnum() or c in "-_." for c in value)
    link = start_tokens.link_for("https://telemed.clinic.example/", value)
    assert link == f"https://telemed.clinic.example/start/{value}"
    assert "zak" not in value.lower()


def test_no_keys_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        start_tokens.issue([], appointment_id="A", doctor_id="D", expires_at=START)
