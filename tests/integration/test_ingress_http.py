"""``POST /v1/events`` over real HTTP: every answer code, on the real store and Redis."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlmodel import select

from telemed.samples import booking
from telemed.store.db import Database
from telemed.store.models import InboxEvent
from tests.support.webapp import INGRESS_SECRET, Recorder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration


def _sign(body: bytes, timestamp: int | None = None, secret: str = INGRESS_SECRET) -> dict[str, str]:
    """Signed independently of events.signing, straight from the contract's words."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), b"v1:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Telemed-Timestamp": ts, "X-Telemed-Signature": f"v1={mac}", "Content-Type": "application/json"}


def _event(appointment_id: str = "H-1", version: int = 1) -> bytes:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    return json.dumps(booking(appointment_id, version, start)).encode()


@pytest.fixture
def app(database: Database, redis_client: redis.Redis, redis_namespace: str):  # type: ignore[no-untyped-def]
    recorder = Recorder()
    services = web_services(settings_for(redis_namespace), database, redis_client, recorder)
    with running_app(services) as url:
        yield url, recorder, database


def _inbox(database: Database) -> list[InboxEvent]:
    with database.session() as s:
        return list(s.exec(select(InboxEvent)))


def test_202_accepted_is_committed_then_duplicate(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    body = _event()
    signed_at = int(time.time())
    first = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body, signed_at))
    assert first.status_code == 202, first.text
    event_id = json.loads(body)["event_id"]
    assert first.json() == {"event_id": event_id, "status": "accepted"}
    [row] = _inbox(database)
    assert row.event_id == event_id and row.status == "pending"
    assert recorder.calls == [("process_event", (event_id,))]  # the id only
    # Signed afresh (another timestamp): the same event again is a duplicate, not a replay.
    # (A second earlier than the first, not "now - 1", which is the first's own second
    # again whenever the clock ticked between the two posts.)
    again = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body, signed_at - 1))
    assert again.status_code == 202 and again.json() == {"event_id": event_id, "status": "duplicate"}
    assert len(recorder.calls) == 1 and len(_inbox(database)) == 1


def test_401_for_missing_bad_and_stale_signatures(app) -> None:  # type: ignore[no-untyped-def]
    url, _, database = app
    body = _event()
    post = lambda headers: httpx.post(f"{url}/v1/events", content=body, headers=headers)  # noqa: E731
    assert post({"Content-Type": "application/json"}).status_code == 401
    headers = _sign(body)
    wrong = dict(headers, **{"X-Telemed-Signature": "v1=" + "0" * 64})
    assert post(wrong).status_code == 401
    assert post(_sign(body, secret="another-secret")).status_code == 401
    assert post(dict(headers, **{"X-Telemed-Signature": "sha256=abc"})).status_code == 401
    # 10 s past the 300 s window: the server reads its clock a moment later, in a later
    # second (a future stamp 301 s ahead, signed at x.99, was only 300 s ahead on arrival).
    stale = post(_sign(body, timestamp=int(time.time()) - 310))
    assert stale.status_code == 401 and "300 s" in stale.json()["detail"]
    assert post(_sign(body, timestamp=int(time.time()) + 310)).status_code == 401
    tampered = httpx.post(f"{url}/v1/events", content=body.replace(b"H-1", b"H-2"), headers=headers)
    assert tampered.status_code == 401
    assert _inbox(database) == []
    assert post(headers).status_code == 202


def test_a_resend_of_the_same_signed_request_is_a_202_duplicate(app) -> None:  # type: ignore[no-untyped-def]
    """The 202 was lost on the way back, so the booking system sends the very same request
    again (headers and all), or signs it again in the same second (the same signature)."""
    url, recorder, database = app
    body = _event()
    headers = _sign(body)
    event_id = json.loads(body)["event_id"]
    with httpx.Client(base_url=url) as client:
        first = client.post("/v1/events", content=body, headers=headers)
        assert first.status_code == 202 and first.json() == {"event_id": event_id, "status": "accepted"}
    # Another connection, as after a proxy timeout or a dropped connection.
    for _ in range(2):
        resend = httpx.post(f"{url}/v1/events", content=body, headers=headers)
        assert resend.status_code == 202, resend.text
        assert resend.json() == {"event_id": event_id, "status": "duplicate"}
    assert len(_inbox(database)) == 1 and recorder.calls == [("process_event", (event_id,))]
    # The window still holds: the same bytes signed 310 s ago are refused.
    stale = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body, int(time.time()) - 310))
    assert stale.status_code == 401


def test_400_for_bodies_that_are_not_one_strict_json_object(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    text = _event().decode()
    huge = "9" * 5000  # json.loads raised ValueError past 4,300 digits: a 500
    cases = {
        re.sub(r'"version": \d+', f'"version": {huge}', text): "an integer has more than 100 digits",
        re.sub(r'"duration_minutes": \d+', '"duration_minutes": NaN', text): "NaN is not a JSON number",
        re.sub(r'"duration_minutes": \d+', '"duration_minutes": 1e999', text): "a number is too large",
        # Both keys would pass: json.loads kept the last one, another parser keeps the first.
        text.replace('"type": ', '"type": "appointment.cancelled", "type": ', 1):
            'the key \"type\" appears twice in one object',
        json.dumps(text): "the top level must be a JSON object, not a string",  # was decoded twice
        f"[{text}]": "the top level must be a JSON object, not an array",
    }
    for body, reason in cases.items():
        answer = httpx.post(f"{url}/v1/events", content=body.encode(), headers=_sign(body.encode()))
        assert answer.status_code == 400, (reason, answer.status_code, answer.text[:300])
        assert answer.json() == {"detail": f"body is refused: {reason}"}
    assert _inbox(database) == [] and recorder.calls == []


def test_400_not_json_and_422_names_each_bad_field(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    for garbage in (b"{not json", b"\xff\xfe"):
        answer = httpx.post(f"{url}/v1/events", content=garbage, headers=_sign(garbage))
        assert answer.status_code == 400 and "JSON" in answer.json()["detail"]
    event = json.loads(_event())
    event["appointment"]["duration_minutes"] = 0
    del event["appointment"]["patient"]["email"]
    body = json.dumps(event).encode()
    answer = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body))
    assert answer.status_code == 422
    locs = {tuple(e["loc"]) for e in answer.json()["errors"]}
    assert ("appointment", "duration_minutes") in locs and ("appointment", "patient", "email") in locs
    assert all(set(e) == {"loc", "msg"} for e in answer.json()["errors"])
    assert _inbox(database) == [] and recorder.calls == []


def test_413_before_parsing_with_and_without_content_length(app) -> None:  # type: ignore[no-untyped-def]
    url, _, database = app
    big = b'{"pad": "' + b"x" * (64 * 1024) + b'"}'
    answer = httpx.post(f"{url}/v1/events", content=big, headers=_sign(big))
    assert answer.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"x" * 1024  # no Content-Length: chunked, cut off while reading

    streamed = httpx.post(f"{url}/v1/events", content=chunks(), headers=_sign(b"ignored"))
    assert streamed.status_code == 413
    assert _inbox(database) == []


def test_503_when_the_store_is_down_writes_nothing_and_the_same_request_goes_through_later(
    database: Database, redis_client: redis.Redis, redis_namespace: str,
) -> None:
    settings = settings_for(redis_namespace)
    down = Database("postgresql://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    body = _event()
    headers = _sign(body)
    with running_app(web_services(settings, down, redis_client)) as url:
        answer = httpx.post(f"{url}/v1/events", content=body, headers=headers)
    assert answer.status_code == 503 and "retry" in answer.json()["detail"]
    down.dispose()
    # The very same signed bytes are accepted once the store is back (a 503 spends no signature).
    recorder = Recorder()
    with running_app(web_services(settings, database, redis_client, recorder)) as url:
        answer = httpx.post(f"{url}/v1/events", content=body, headers=headers)
    assert answer.status_code == 202 and answer.json()["status"] == "accepted"


def test_503_when_the_queue_is_down_writes_nothing(database: Database, redis_namespace: str) -> None:
    dead_redis = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    body = _event()
    with running_app(web_services(settings_for(redis_namespace), database, dead_redis)) as url:
        answer = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body))
    assert answer.status_code == 503
    assert _inbox(database) == []


def test_503_when_ingress_has_no_secret(database: Database, redis_client: redis.Redis, redis_namespace: str) -> None:
    body = _event()
    services = web_services(settings_for(redis_namespace, ingress_secret=None), database, redis_client)
    with running_app(services) as url:
        answer = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body))
    assert answer.status_code == 503 and "TELEMED_INGRESS_SECRET" in answer.json()["detail"]


def test_openapi_documents_the_endpoint_and_its_answers(app) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = app
    spec = httpx.get(f"{url}/openapi.json").json()
    operation = spec["paths"]["/v1/events"]["post"]
    assert set(operation["responses"]) >= {"202", "400", "401", "413", "422", "503"}
    assert "duplicate" in operation["responses"]["202"]["description"]
    assert "replay" not in operation["responses"]["401"]["description"]
    assert "key given twice" in operation["responses"]["400"]["description"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "$defs" not in json.dumps(schema)  # self-contained
    required = {p["name"]: p["required"] for p in operation["parameters"]}
    assert required == {"X-Telemed-Timestamp": True, "X-Telemed-Signature": True, "X-Telemed-Key-Id": False}
    assert httpx.get(f"{url}/docs").status_code == 200
