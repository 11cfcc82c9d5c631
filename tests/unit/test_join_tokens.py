"""The patient join-link codec and its masking in logs."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from cryptography.fernet import Fernet

from telemed.foundation import join_tokens, start_tokens
from telemed.foundation.redaction import scrub_text
from telemed.foundation.redaction.paths import mask_request_target
from tests.support.encodings import encoded

KEYS = [Fernet.generate_key().decode()]


def test_round_trip_and_rotation() -> None:
    token = join_tokens.issue(KEYS, appointment_id="A-1", patient_id="P-1")
    assert join_tokens.verify(KEYS, token) == join_tokens.JoinClaim("A-1", "P-1")
    newer = [Fernet.generate_key().decode(), *KEYS]
    assert join_tokens.verify(newer, token).appointment_id == "A-1"  # links already sent keep working
    assert join_tokens.link_for("https://telemed.example/", token) == f"https://telemed.example/join/{token}"


@pytest.mark.parametrize("token", ["", "x" * 2000, "garbage", "eyJhIjoiQS0xIn0.bad"])
def test_bad_tokens(token: str) -> None:
    with pytest.raises(join_tokens.JoinTokenError):
        join_tokens.verify(KEYS, token)


def test_a_start_token_is_not_a_join_token() -> None:
    from datetime import UTC, datetime, timedelta

    start = start_tokens.issue(KEYS, appointment_id="A-1", doctor_id="D-1",
                               expires_at=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(join_tokens.JoinTokenError):
        join_tokens.verify(KEYS, start)
    with pytest.raises(start_tokens.StartTokenError):
        start_tokens.verify(KEYS, join_tokens.issue(KEYS, appointment_id="A-1", patient_id="P-1"))


TOKEN = join_tokens.issue(KEYS, appointment_id="A-CANARY", patient_id="P-CANARY")


# Ids name the encoding: the token is random per process, and xdist's workers must
# collect the same test names.
@pytest.mark.parametrize("path", [
    f"/join/{TOKEN}", f"/join/{encoded(TOKEN)}", f"/join/%65{TOKEN[1:]}", f"/join%2F{TOKEN}",
    f"/JoIn/{TOKEN}", f"/{encoded('join', 2)}/{TOKEN}", f"/telemed/join/{TOKEN}",
], ids=["plain", "encoded", "first-char-encoded", "slash-encoded", "mixed-case", "segment-encoded-twice",
        "under-a-prefix"])
def test_the_join_segment_is_masked_in_any_encoding(path: str) -> None:
    secret = TOKEN.split(".")[-1]
    out = mask_request_target(path)
    assert secret not in unquote(unquote(unquote(out))) and "join/[REDACTED]" in out
    for line in (path, f"https://telemed.example{path}", f'"GET {path} HTTP/1.1" 302'):
        scrubbed = scrub_text(line)
        assert secret not in unquote(unquote(unquote(scrubbed))), scrubbed
