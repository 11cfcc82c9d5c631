"""Canary scan: after a real pipeline run, no secret appears in logs, Redis or the database.

The canaries are the real secrets of the run (each meeting's join link, passcode and a
start link with its ZAK, the Zoom access token) plus a patient whose name and email are
distinctive strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy

from telemed.samples import booking

pytestmark = pytest.mark.integration

PATIENT_EMAIL = "canary.patient.q7z@example.org"
PATIENT_NAME = "Canaryname Qzxv"


def _canary_event(appointment_id: str, version: int, start: datetime, type: str = "appointment.booked") -> dict:
    event = booking(appointment_id, version, start, type=type)
    event["appointment"]["patient"].update(name=PATIENT_NAME, email=PATIENT_EMAIL)
    return event


def test_no_canary_in_logs_redis_or_database(pipeline, zoom_sim, smtp) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    pipeline.publish([_canary_event("K-1", 1, start), _canary_event("K-2", 1, start)])
    pipeline.wait_settled()
    pipeline.publish([_canary_event("K-1", 2, start + timedelta(hours=1), "appointment.rescheduled"),
                      _canary_event("K-2", 2, start, "appointment.cancelled")])
    pipeline.wait_settled()

    canaries = {"patient email": PATIENT_EMAIL, "patient name": PATIENT_NAME}
    handed_out = zoom_sim.secrets_handed_out()
    assert any("zak=" in value for value in handed_out), "no start link was fetched; the scan proves little"
    for index, value in enumerate(sorted(handed_out)):
        canaries[f"zoom secret #{index} ({value[:12]}...)"] = value
    for index, meeting in enumerate(pipeline.meetings().values()):
        canaries[f"passcode {index}"] = meeting.passcode

    places: dict[str, str] = {"worker log": pipeline.worker_log()}
    client = redis.Redis.from_url(pipeline.redis_url)
    dump = []
    for key in client.scan_iter(match=f"{pipeline.namespace}*"):
        kind = client.type(key)
        dump.append(repr(key))
        if kind == b"string":
            dump.append(repr(client.get(key)))
        elif kind == b"hash":
            dump.append(repr(client.hgetall(key)))
        elif kind == b"list":
            dump.append(repr(client.lrange(key, 0, -1)))
        elif kind == b"zset":
            dump.append(repr(client.zrange(key, 0, -1)))
        elif kind == b"set":
            dump.append(repr(client.smembers(key)))
    places["redis"] = "\n".join(dump)
    with pipeline.database.engine.connect() as conn:
        rows = []
        for table in ("inbox_events", "appointments", "meetings", "outbox", "provisioning_intents", "doctors"):
            rows += [repr(tuple(row)) for row in conn.execute(sqlalchemy.text(f"select * from {table}"))]
    places["database"] = "\n".join(rows)

    assert len(places["worker log"]) > 1000, "the worker logged almost nothing; the scan proves nothing"
    hits = [f"{name} in {place}" for place, text in places.items() for name, value in canaries.items()
            if value and value in text]
    assert hits == []

    # The patient's own mail carries their join link; nobody else's mail carries it.
    patient_mail = [m for m in smtp.messages if PATIENT_EMAIL in str(m["To"])]
    assert patient_mail
    for mail in smtp.messages:
        raw = mail.as_string()
        assert "zak=" not in raw or PATIENT_EMAIL not in str(mail["To"])
