"""The issue's examples, refused at both doors with the field named and nothing written:
``POST /v1/events`` (422) and ``events.publish`` (``InvalidEvent``, what ``telemed
publish`` reports). An internationalised domain is taken, stored in its ASCII form."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from sqlmodel import select

from telemed.events import InvalidEvent
from telemed.events.publish import Publisher
from telemed.samples import booking
from telemed.store.db import Database
from telemed.store.models import InboxEvent
from tests.support.webapp import INGRESS_SECRET, Recorder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration

REFUSED = [
    (("appointment", "patient", "name"), "Grace\u0085Hopper", "visible characters"),  # C1 next line
    (("appointment", "doctor", "name"), "Dr. \u009bAda", "visible characters"),  # C1 CSI
    (("appointment", "patient", "name"), "Ann\u202egpj.exe", "visible characters"),  # bidi override
    (("appointment", "clinic", "name"), "North\u200bside", "visible characters"),  # zero-width space
    (("appointment", "patient", "email"), "jörg@mail.example", "ASCII characters before the @"),
    (("appointment", "doctor", "email"), "jörg@bücher.example", "ASCII characters before the @"),
    (("appointment", "start_time"), "9999-12-31T23:00:00+00:00", "years 2000 to 2999"),
]


def _event(path: tuple[str, ...], value: Any, n: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    event = booking(f"FR-{n}", 1, start)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


def _sign(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(INGRESS_SECRET.encode(), b"v1:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Telemed-Timestamp": ts, "X-Telemed-Signature": f"v1={mac}", "Content-Type": "application/json"}


def _inbox(database: Database) -> list[InboxEvent]:
    with database.session() as s:
        return list(s.exec(select(InboxEvent)))


def test_the_http_door_refuses_each_example_with_422_naming_the_field(
    database: Database, redis_client: redis.Redis, redis_namespace: str,
) -> None:
    recorder = Recorder()
    services = web_services(settings_for(redis_namespace), database, redis_client, recorder)
    with running_app(services) as url:
        for n, (path, value, reason) in enumerate(REFUSED):
            body = json.dumps(_event(path, value, n), ensure_ascii=False).encode()
            answer = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body))
            assert answer.status_code == 422, (path, answer.text)
            errors = answer.json()["errors"]
            assert [tuple(e["loc"]) for e in errors] == [path] and reason in errors[0]["msg"], errors
        assert _inbox(database) == [] and recorder.calls == []

        body = json.dumps(_event(("appointment", "doctor", "email"), "doc@bücher.example", 99),
                          ensure_ascii=False).encode()
        answer = httpx.post(f"{url}/v1/events", content=body, headers=_sign(body))
        assert answer.status_code == 202, answer.text
    [row] = _inbox(database)
    assert json.loads(row.payload)["appointment"]["doctor"]["email"] == "doc@xn--bcher-kva.example"


def test_publish_refuses_each_example_naming_the_field_and_writes_nothing(database: Database) -> None:
    queued: list[str] = []
    publisher = Publisher(database=database, enqueue=queued.append)
    for n, (path, value, reason) in enumerate(REFUSED):
        with pytest.raises(InvalidEvent) as caught:
            publisher.publish(_event(path, value, n))
        assert [tuple(e["loc"]) for e in caught.value.errors] == [path]
        assert reason in caught.value.errors[0]["msg"]
    assert _inbox(database) == [] and queued == []


def test_an_old_inbox_row_the_rules_now_refuse_fails_for_good_naming_the_field(database: Database) -> None:
    """Accepted before the rules (a C1 name, a year-9999 start): no retry loop."""
    from telemed.store import inbox
    from telemed.workers.apply_event import apply_event
    from telemed.workers.policy.retries import PermanentFailure

    event = _event(("appointment", "start_time"), "9999-12-31T23:00:00+00:00", 1)
    event["appointment"]["patient"]["name"] = "Grace\u0085Hopper"
    with database.session() as session:
        inbox.record_event(session, event_id=event["event_id"], type=event["type"], appointment_id="FR-1",
                           version=1, occurred_at=datetime.now(UTC), payload=json.dumps(event))
    with pytest.raises(PermanentFailure) as caught:
        apply_event(database, event["event_id"])
    assert "appointment.start_time" in str(caught.value) and "appointment.patient.name" in str(caught.value)
    assert "Grace" not in str(caught.value)
