"""``POST /v1/events`` under hypothesis, over real HTTP on the real store and Redis:
broken events, junk bodies, huge bodies, and missing, malformed, stale or forged
signatures. Whatever comes in, the answer is one of the contract's (202, 400, 401, 413,
422), a JSON body without a traceback, and a rejection that says what was wrong: the
field (422), the header (401), the JSON (400) or the size (413). Never a 5xx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from telemed.store.db import Database
from tests.support.fuzz.settings import fuzz
from tests.support.fuzz.strategies import (
    Mutation,
    assert_well_formed,
    base_event,
    json_values,
    junk_bodies,
    mutations,
    names_field,
    strict_json_traps,
)
from tests.support.webapp import (
    INGRESS_SECRET,
    ZOOM_SECRET_TOKEN,
    Recorder,
    running_app,
    settings_for,
    web_services,
)

pytestmark = pytest.mark.integration

CONTRACT = {202, 400, 401, 413, 422}
HEADERS = ("X-Telemed-Timestamp", "X-Telemed-Signature")
ascii_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


@pytest.fixture
def ingress(database: Database, redis_client: redis.Redis, redis_namespace: str):  # type: ignore[no-untyped-def]
    services = web_services(settings_for(redis_namespace), database, redis_client, Recorder())
    with running_app(services) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _mac(body: bytes, timestamp: str, secret: str = INGRESS_SECRET) -> str:
    """Signed independently of events.signing, from the contract's words."""
    return "v1=" + hmac.new(secret.encode(), b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signing:
    kind: str  # valid | a way of being wrong
    headers: dict[str, str]


@st.composite
def signings(draw: st.DrawFn, body: bytes) -> Signing:
    now = int(time.time())
    kind = draw(st.sampled_from([
        "valid", "valid", "valid", "none", "no timestamp", "no signature", "forged", "other secret",
        "other body", "stale", "future", "bad scheme", "not hex", "garbage timestamp", "garbage signature",
    ]))
    ts = str(now)
    headers = {"Content-Type": "application/json", HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)}
    if kind == "none":
        headers = {"Content-Type": "application/json"}
    elif kind == "no timestamp":
        del headers[HEADERS[0]]
    elif kind == "no signature":
        del headers[HEADERS[1]]
    elif kind == "forged":
        headers[HEADERS[1]] = "v1=" + draw(st.binary(min_size=32, max_size=32)).hex()
    elif kind == "other secret":
        headers[HEADERS[1]] = _mac(body, ts, draw(ascii_text.filter(lambda s: s != INGRESS_SECRET)))
    elif kind == "other body":
        headers[HEADERS[1]] = _mac(body + b" ", ts)
    elif kind in {"stale", "future"}:
        skew = draw(st.integers(min_value=301, max_value=10**9))
        ts = str(max(0, now - skew) if kind == "stale" else now + skew)
        headers.update({HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)})
    elif kind == "bad scheme":
        headers[HEADERS[1]] = draw(st.sampled_from(["v2=", "sha256=", "V1=", "", "v1:"])) + _mac(body, ts)[3:]
    elif kind == "not hex":
        headers[HEADERS[1]] = "v1=" + draw(ascii_text.filter(lambda s: len(s) != 64 or any(c not in "0123456789abcdef" for c in s)))
    elif kind == "garbage timestamp":
        ts = draw(ascii_text.filter(lambda s: not s.strip().isdigit()))
        headers.update({HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)})
    elif kind == "garbage signature":
        headers[HEADERS[1]] = draw(ascii_text)
    # HTTP itself (h11) refuses header values with outer whitespace before they leave us.
    return Signing(kind, {name: value.strip() for name, value in headers.items()})


def _check(response: httpx.Response, *, signing: Signing | None, mutation: Mutation | None = None) -> None:
    text = response.text
    assert response.status_code in CONTRACT, f"{response.status_code}: {text[:500]}"
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    assert response.headers["content-type"].startswith("application/json"), response.headers
    data = response.json()
    status = response.status_code
    if signing is not None and signing.kind != "valid" and status != 413:
        assert status == 401, f"{signing.kind}: {status} {text[:300]}"
    if status == 401:
        detail = data["detail"]
        assert any(h in detail for h in HEADERS) or "signature" in detail or "signed request" in detail, detail
    elif status == 400:
        assert data["detail"].startswith(("body is not valid JSON: ", "body is refused: ")), data
    elif status == 413:
        assert "larger than" in data["detail"], data
    elif status == 422:
        assert_well_formed(data["errors"])
        if mutation is not None:
            assert names_field(data["errors"], mutation.path), (
                f"{mutation.how} at {'.'.join(mutation.path)}, but the errors name {[e['loc'] for e in data['errors']]}")
    elif status == 202:
        assert data["status"] in {"accepted", "duplicate"} and isinstance(data["event_id"], str)
        if mutation is not None:
            assert not mutation.certain, f"accepted an event with {mutation.how} at {'.'.join(mutation.path)}"


@fuzz(120, fixtures=True)
@given(st.data())
def test_broken_events_are_refused_by_field(ingress: httpx.Client, data: st.DataObject) -> None:
    mutation = data.draw(mutations())
    body = mutation.body()
    signing = data.draw(signings(body))
    _check(ingress.post("/v1/events", content=body, headers=signing.headers), signing=signing,
           mutation=mutation if signing.kind == "valid" else None)


@fuzz(80, fixtures=True)
@given(st.data())
def test_junk_bodies_are_refused(ingress: httpx.Client, data: st.DataObject) -> None:
    body = data.draw(junk_bodies)
    signing = data.draw(signings(body))
    _check(ingress.post("/v1/events", content=body, headers=signing.headers), signing=signing)


@fuzz(8, fixtures=True)
@given(size=st.integers(min_value=65 * 1024, max_value=400 * 1024), signed=st.booleans(),
       filler=st.sampled_from(["x", "é", "💥", "\\u0000"]))
def test_huge_bodies_are_refused_before_parsing(ingress: httpx.Client, size: int, signed: bool, filler: str) -> None:
    event: dict[str, Any] = base_event(suffix="huge")
    event["appointment"]["patient"]["name"] = filler * (size // len(filler.encode()))
    body = json.dumps(event, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    headers = {HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)} if signed else {}
    response = ingress.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 413, response.text[:300]
    _check(response, signing=None)


@fuzz(60, fixtures=True)
@given(trap=strict_json_traps())
def test_a_body_that_is_not_one_strict_json_object_is_400_naming_why(
    ingress: httpx.Client, trap: tuple[bytes, str],
) -> None:
    body, reason = trap
    ts = str(int(time.time()))
    response = ingress.post("/v1/events", content=body, headers={HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)})
    _check(response, signing=None)
    assert response.status_code == 400, f"{reason}: {response.status_code} {response.text[:300]}"
    assert response.json()["detail"].startswith("body is refused: ") and reason in response.json()["detail"]


def test_a_resent_request_and_a_fresh_signature_are_both_duplicates(ingress: httpx.Client) -> None:
    body = json.dumps(base_event(suffix="resend")).encode()
    ts = str(int(time.time()))
    headers = {HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)}
    first = ingress.post("/v1/events", content=body, headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    resend = ingress.post("/v1/events", content=body, headers=headers)
    assert resend.status_code == 202 and resend.json()["status"] == "duplicate"
    ts = str(int(ts) - 1)
    again = ingress.post("/v1/events", content=body, headers={HEADERS[0]: ts, HEADERS[1]: _mac(body, ts)})
    assert again.status_code == 202 and again.json()["status"] == "duplicate"


@st.composite
def zoom_notifications(draw: st.DrawFn) -> bytes:
    """A Zoom notification with one part replaced by anything, or junk altogether."""
    event: dict[str, Any] = {"event": draw(st.sampled_from(["meeting.started", "meeting.ended", "meeting.deleted",
                                                             "app_deauthorized", "endpoint.url_validation"])),
                             "event_ts": int(time.time() * 1000),
                             "payload": {"account_id": "acc", "plainToken": "abc",
                                         "object": {"id": "123456789", "host_id": "h", "uuid": "u=="}}}
    where = draw(st.sampled_from(["event", "event_ts", "payload", "payload.object", "payload.object.id",
                                  "payload.plainToken", "none"]))
    if where != "none":
        node = event
        *parents, last = where.split(".")
        for part in parents:
            node = node[part]
        node[last] = draw(json_values if where != "payload.object.id" else st.one_of(
            json_values, zoom_meeting_ids_out_of_range))
    return json.dumps(event).encode()


# Past int64 (our BIGINT column), as Zoom's number or string of digits, up to past int()'s 4,300 digits.
zoom_meeting_ids_out_of_range = st.one_of(
    st.integers(min_value=2**63, max_value=10**40), st.integers(max_value=0),
    st.integers(min_value=20, max_value=6000).map(lambda n: "9" * n),
)


@fuzz(100, fixtures=True)
@given(st.data())
def test_zoom_webhook_takes_anything_signed_without_a_5xx(ingress: httpx.Client, data: st.DataObject) -> None:
    from telemed.zoom import webhooks

    body = data.draw(st.one_of(junk_bodies, zoom_notifications()))
    ts = str(int(time.time()))
    headers = {webhooks.TIMESTAMP_HEADER: ts, webhooks.SIGNATURE_HEADER: webhooks.zoom_signature(ZOOM_SECRET_TOKEN, ts, body),
               "Content-Type": "application/json"}
    response = ingress.post("/zoom/webhook", content=body, headers=headers)
    assert response.status_code in {200, 400, 413}, f"{response.status_code}: {response.text[:300]}"
    assert "Traceback" not in response.text and 'File "' not in response.text
    response.json()
