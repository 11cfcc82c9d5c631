"""``POST /zoom/webhook`` over real HTTP: the challenge, every answer code, dedupe of retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest
import redis
from sqlalchemy import text
from sqlmodel import select

from telemed.store.db import Database
from telemed.store.operations import ZoomWebhookReceipt
from tests.support.webapp import ZOOM_SECRET_TOKEN, Recorder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration


def _zoom_headers(body: bytes, timestamp: int | None = None, secret: str = ZOOM_SECRET_TOKEN) -> dict[str, str]:
    """Zoom's v0 scheme, computed here independently of zoom.webhooks."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-zm-request-timestamp": ts, "x-zm-signature": f"v0={mac}", "content-type": "application/json"}


def _notification(event: str = "meeting.started", meeting_id: int = 85318239203) -> bytes:
    return json.dumps({"event": event, "event_ts": 1_700_000_000_123,
                       "payload": {"account_id": "acc", "object": {"id": str(meeting_id), "host_id": "h-1",
                                                                   "topic": "Video appointment"}}}).encode()


@pytest.fixture
def app(database: Database, redis_client: redis.Redis, redis_namespace: str):  # type: ignore[no-untyped-def]
    recorder = Recorder()
    with running_app(web_services(settings_for(redis_namespace), database, redis_client, recorder)) as url:
        yield f"{url}/zoom/webhook", recorder, database


def _receipts(database: Database) -> list[ZoomWebhookReceipt]:
    with database.session() as s:
        return list(s.exec(select(ZoomWebhookReceipt)))


def test_url_validation_challenge(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    body = json.dumps({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
                       "event_ts": 1_700_000_000_000}).encode()
    answer = httpx.post(url, content=body, headers=_zoom_headers(body))
    assert answer.status_code == 200
    expected = hmac.new(ZOOM_SECRET_TOKEN.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert answer.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    unsigned = httpx.post(url, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    no_token = json.dumps({"event": "endpoint.url_validation", "payload": {}}).encode()
    assert httpx.post(url, content=no_token, headers=_zoom_headers(no_token)).status_code == 400
    assert _receipts(database) == [] and recorder.calls == []


def test_200_accepted_is_stored_encrypted_queued_and_retries_are_deduplicated(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    body = _notification()
    started = time.monotonic()
    first = httpx.post(url, content=body, headers=_zoom_headers(body))
    assert first.status_code == 200 and first.json() == {"status": "accepted"}
    assert time.monotonic() - started < 3  # Zoom's deadline
    [receipt] = _receipts(database)
    assert (receipt.event, receipt.zoom_meeting_id, receipt.status) == ("meeting.started", 85318239203, "pending")
    assert recorder.calls == [("process_zoom_webhook", (receipt.id,))]
    assert recorder.clinics == ["default"]  # the clinic whose endpoint it came through: its gate
    with database.engine.connect() as connection:
        raw = connection.execute(text("SELECT payload FROM zoom_webhook_receipts")).scalar_one()
    assert "Video appointment" not in raw  # encrypted at rest
    # Zoom retries the same notification with a new timestamp and signature.
    retry = httpx.post(url, content=body, headers=_zoom_headers(body, int(time.time()) - 2))
    assert retry.status_code == 200 and retry.json() == {"status": "duplicate"}
    # A resend of the very same request (headers and all) is no forgery either.
    headers = _zoom_headers(body)
    for _ in range(2):
        resend = httpx.post(url, content=body, headers=headers)
        assert resend.status_code == 200 and resend.json() == {"status": "duplicate"}
    assert len(_receipts(database)) == 1 and len(recorder.calls) == 1


def test_200_ignored_for_events_we_do_not_handle(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    body = json.dumps({"event": "recording.completed", "payload": {"object": {"id": 1}}}).encode()
    answer = httpx.post(url, content=body, headers=_zoom_headers(body))
    assert answer.status_code == 200 and answer.json() == {"status": "ignored"}
    assert _receipts(database) == [] and recorder.calls == []


def test_400_401_413(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    garbage = b"<xml/>"
    assert httpx.post(url, content=garbage, headers=_zoom_headers(garbage)).status_code == 400
    incomplete = json.dumps({"event": "meeting.deleted", "payload": {"object": {}}}).encode()
    answer = httpx.post(url, content=incomplete, headers=_zoom_headers(incomplete))
    assert answer.status_code == 400 and "payload.object.id" in answer.json()["detail"]
    body = _notification()
    assert httpx.post(url, content=body, headers=_zoom_headers(body, secret="wrong")).status_code == 401
    assert httpx.post(url, content=body, headers=_zoom_headers(body, int(time.time()) - 400)).status_code == 401
    assert httpx.post(url, content=body, headers={"x-zm-signature": "v0=" + "0" * 64}).status_code == 401
    huge = b'{"event":"meeting.started","pad":"' + b"x" * 300_000 + b'"}'
    assert httpx.post(url, content=huge, headers=_zoom_headers(huge)).status_code == 413
    assert _receipts(database) == [] and recorder.calls == []


def test_503_when_the_store_is_down_or_no_secret_token(
    database: Database, redis_client: redis.Redis, redis_namespace: str,
) -> None:
    body = _notification()
    down = Database("postgresql://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    with running_app(web_services(settings_for(redis_namespace), down, redis_client)) as url:
        answer = httpx.post(f"{url}/zoom/webhook", content=body, headers=_zoom_headers(body))
    down.dispose()
    assert answer.status_code == 503  # Zoom retries later
    services = web_services(settings_for(redis_namespace, zoom_webhook_secret_token=None), database, redis_client)
    with running_app(services) as url:
        answer = httpx.post(f"{url}/zoom/webhook", content=body, headers=_zoom_headers(body))
    assert answer.status_code == 503 and "TELEMED_ZOOM_WEBHOOK_SECRET_TOKEN" in answer.json()["detail"]
    assert _receipts(database) == []


def test_a_meeting_id_outside_int64_is_ignored_with_200_and_nothing_stored(app) -> None:  # type: ignore[no-untyped-def]
    """Zoom's meeting ids are int64 (our column is BIGINT): a larger one made SQLite raise
    OverflowError (a 500) and PostgreSQL a DataError (a 503), and Zoom retried it for days.
    No meeting of ours can have it, so the answer is 200 ``ignored``."""
    url, recorder, database = app
    outside = [10**29, str(10**29), 2**63, str(2**63), "0" + str(2**64), 0, -5, "-" + "9" * 30, "9" * 5000]
    for meeting_id in outside:
        body = json.dumps({"event": "meeting.ended", "event_ts": 1_700_000_000_123,
                           "payload": {"account_id": "acc", "object": {"id": meeting_id, "host_id": "h-1"}}}).encode()
        answer = httpx.post(url, content=body, headers=_zoom_headers(body))
        assert (answer.status_code, answer.json()) == (200, {"status": "ignored"}), (str(meeting_id)[:40], answer.text)
    assert _receipts(database) == [] and recorder.calls == []
    for not_an_id in ("12\n", "1.5", True, None, "12a"):
        body = json.dumps({"event": "meeting.ended", "payload": {"object": {"id": not_an_id}}}).encode()
        answer = httpx.post(url, content=body, headers=_zoom_headers(body))
        assert answer.status_code == 400 and "payload.object.id" in answer.json()["detail"]
    largest = _notification(meeting_id=2**63 - 1)
    answer = httpx.post(url, content=largest, headers=_zoom_headers(largest))
    assert answer.json() == {"status": "accepted"}
    assert [r.zoom_meeting_id for r in _receipts(database)] == [2**63 - 1]


def test_400_for_a_body_that_is_not_one_strict_json_object(app) -> None:  # type: ignore[no-untyped-def]
    url, recorder, database = app
    text = _notification().decode()
    cases = {
        text.replace('"id": "85318239203"', '"id": ' + "8" * 5000): "an integer has more than 100 digits",  # was a 500
        text.replace('"event": ', '"event": "meeting.deleted", "event": ', 1): 'the key "event" appears twice',
        json.dumps(text): "the top level must be a JSON object, not a string",
    }
    for body, reason in cases.items():
        answer = httpx.post(url, content=body.encode(), headers=_zoom_headers(body.encode()))
        assert answer.status_code == 400, (reason, answer.text[:300])
        assert answer.json()["detail"].startswith(f"body is refused: {reason}")
    assert _receipts(database) == [] and recorder.calls == []
